// MosaicFS web UI: the little script htmx does not cover. "/" focuses the search box.
document.addEventListener("keydown", function (e) {
  if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
  var t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
  var box = document.querySelector("[data-search]");
  if (box) { e.preventDefault(); box.focus(); }
});
