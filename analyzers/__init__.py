"""Floor 2: one package per analyzer (analyzers/<name>/: analyzer.py, result.py and the method's own
modules); analyzers/_shared/ for what two analyzers share. Pure computation: no streamlit, no file I/O."""
