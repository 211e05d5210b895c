"""The sidebar model picker and the cached model (and toxicity classifier), shared by every page.

The model, device and precision live under plain session-state keys (``app_model``, ``app_device``,
``app_dtype``): the one source of truth every page reads. The sidebar widgets are re-seeded from
them on each run, so moving between pages never empties the box or swaps the model, and the URL
carries them (``?model=…&device=…&dtype=…``) so a shared link opens the same model on any page."""

from __future__ import annotations

import streamlit as st

from bias_lab.device import DEVICE_CHOICES, device_description
from bias_lab.errors import BiasLabError
from bias_lab.models import LoadedModel, default_model, load_model
from bias_lab.toxicity import CLASSIFIER_OPTION, DEFAULT_TOXICITY_CLASSIFIER, ToxicityScorer
from ui.format import number

DTYPE_CHOICES = ("float32", "bfloat16", "float16")
# session-state key of the truth → (widget key, URL parameter, default, valid values or None)
SETTINGS = {
    "app_model": ("model_source", "model", default_model, None),
    "app_device": ("device", "device", lambda: "auto", DEVICE_CHOICES),
    "app_dtype": ("dtype", "dtype", lambda: "float32", DTYPE_CHOICES),
}


@st.cache_resource(show_spinner="Loading model…", max_entries=2)
def cached_model(source: str, device: str, dtype: str) -> LoadedModel:
    return load_model(source, device=device, dtype=dtype)


@st.cache_resource(show_spinner="Loading the toxicity classifier…", max_entries=2)
def cached_classifier(source: str, device: str) -> ToxicityScorer:
    return ToxicityScorer.load(source, device=device)


def _page_words(message: str) -> str:
    """A classifier message as the page says it: the CLI's option is the Classifier box here."""
    return (message.replace(f"with {CLASSIFIER_OPTION} PATH", "in the Classifier box")
            .replace(f"with {CLASSIFIER_OPTION}", "in the Classifier box"))


def classifier(source: str, device, label: str = "") -> ToxicityScorer:
    """The toxicity classifier ``source`` (hub id or local folder) on ``device``, loaded once per
    source and device like the models (another label reads the same loaded weights). A failure is
    one :class:`BiasLabError` worded for the page."""
    source = (source or "").strip() or DEFAULT_TOXICITY_CLASSIFIER
    try:
        scorer = cached_classifier(source, str(device))
        if label.strip():
            scorer = ToxicityScorer(scorer.source, scorer.model, scorer.tokenizer, label=label.strip(),
                                    device=scorer.device, warning=scorer.warning)
    except BiasLabError as error:
        raise BiasLabError(_page_words(str(error))) from None
    return scorer


def _format_bytes(count: int | None) -> str:
    return "—" if count is None else f"{count / 2**30:.1f} GiB"


def _initialise() -> None:
    """First run of a session: take the settings from the URL, else the defaults."""
    for state_key, (_, parameter, default, valid) in SETTINGS.items():
        if state_key in st.session_state:
            continue
        shared = st.query_params.get(parameter)
        if shared is not None and (valid is None or shared in valid) and shared.strip():
            st.session_state[state_key] = shared.strip()
        else:
            st.session_state[state_key] = default()


def _store(state_key: str) -> None:
    widget_key = SETTINGS[state_key][0]
    value = st.session_state[widget_key]
    st.session_state[state_key] = value.strip() if isinstance(value, str) else value


def current_model_settings() -> tuple[str, str, str]:
    """(model source, device, precision) as the whole app currently uses them."""
    _initialise()
    return st.session_state["app_model"], st.session_state["app_device"], st.session_state["app_dtype"]


def use_model(source: str) -> None:
    """Make ``source`` the model of every page (applied on the next run)."""
    st.session_state["app_model"] = source.strip()


def sync_url() -> None:
    """Write the settings into the URL; a page change clears it, so every page does this."""
    for state_key, (_, parameter, default, _) in SETTINGS.items():
        value = st.session_state.get(state_key)
        if value and value != default():
            if st.query_params.get(parameter) != value:
                st.query_params[parameter] = value
        elif parameter in st.query_params:
            del st.query_params[parameter]


def sidebar_model() -> LoadedModel | None:
    """Draw the model picker; return the loaded model, or None after explaining why it failed."""
    _initialise()
    sidebar = st.sidebar
    sidebar.header("Model")
    for state_key, (widget_key, *_rest) in SETTINGS.items():
        st.session_state[widget_key] = st.session_state[state_key]  # re-seed: the widget shows the truth
    sidebar.text_input("Hub id or local folder", key="model_source", on_change=_store, args=("app_model",),
                       help="e.g. bert-base-uncased, roberta-base, gpt2, or /path/to/saved/model")
    sidebar.selectbox("Device", DEVICE_CHOICES, key="device", on_change=_store, args=("app_device",))
    sidebar.selectbox("Precision", DTYPE_CHOICES, key="dtype", on_change=_store, args=("app_dtype",))
    source, device, dtype = current_model_settings()
    sync_url()
    if not source:
        st.error("no model given: type a hub id (e.g. bert-base-uncased) or a local folder in the sidebar")
        return None
    try:
        loaded = cached_model(source, device, dtype)
    except BiasLabError as error:
        st.error(str(error))
        folder = st.text_input("Load from a local folder instead", key="local_model_folder",
                               placeholder="/path/to/bert-base-uncased (a folder with config.json)")
        if folder.strip():
            try:
                cached_model(folder.strip(), device, dtype)
            except BiasLabError as folder_error:
                st.error(str(folder_error))
                return None
            use_model(folder)
            st.rerun()
        return None
    facts = device_description(loaded.device)
    sidebar.caption(
        f"{loaded.family} · {loaded.kind} · {loaded.num_layers} layers × {loaded.num_heads} heads · "
        f"{number(loaded.memory_bytes / 2**20)} MB on {facts['name']}"
        + (f" ({_format_bytes(facts['free_memory_bytes'])} free)" if facts["free_memory_bytes"] else "")
    )
    return loaded
