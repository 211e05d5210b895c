"""bias lab dashboard — the entrypoint. Run with: streamlit run app.py --server.address 127.0.0.1

It sets the favicon, the wide layout and the logo, then hands over to the sidebar navigation:
Home, the Lesson, and the pages in the order of the workflow (``ui/navigation.py``). Every page is a
script in views/ that also runs on its own (the AppTest tests open them directly). The folder is
not called pages/: Streamlit would then build its own page menu for links opened directly."""

import streamlit as st

from bias_lab.assets import asset_path
from ui.navigation import present_pages

st.set_page_config(page_title="bias lab", page_icon=str(asset_path("app", "favicon.png")), layout="wide")
st.logo(str(asset_path("app", "logo.svg")), icon_image=str(asset_path("app", "icon.svg")), size="large")

pages = [st.Page(entry.script, title=entry.title, icon=entry.icon, url_path=entry.url_path or None,
                 default=not entry.url_path) for entry in present_pages()]
st.navigation(pages).run()
