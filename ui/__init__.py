"""Streamlit glue shared by app.py and views/ (the pages): layout only; every computation is in bias_lab."""
