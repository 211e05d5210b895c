"""Streamlit glue shared by app.py and pages/: layout only; every computation is in bias_lab."""
