// Loaded in <head>, before the first paint: marks the page as scripted, so the controls that
// only work with JavaScript (class js-only) are laid out from the start instead of appearing
// after load and pushing the page down (layout shift).
document.documentElement.classList.add("js");
