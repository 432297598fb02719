"""Floor 2: one module per analyzer; pure computation (no streamlit, no file I/O)."""
