"""Floor 4: thin Streamlit pages (widgets in, results out). Only pages and app.py import streamlit."""
