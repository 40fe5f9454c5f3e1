// The main factor: one radio per factor, usable only while its factor is ticked; Shift + the
// factor's key ticks it and marks it main. With a single ticked factor the server implies it,
// and this marks it too so the annotator sees what will be stored. The server checks the rule.
(function () {
  "use strict";
  const radios = Array.from(document.querySelectorAll("input[name=main_factor]"));
  if (!radios.length) return;
  const boxOf = (r) => document.getElementById(r.dataset.mainFor);
  const nothing = document.getElementById("id_nothing_differs");
  // A main factor marked only because it was the single ticked one is "implied": ticking a
  // second factor clears it, so that the annotator chooses rather than inherits the first tick.
  let implied = null;
  function sync() {
    const ticked = radios.filter((r) => boxOf(r).checked);
    radios.forEach((r) => {
      const on = boxOf(r).checked;
      r.disabled = !on;
      if (!on) r.checked = false;
    });
    if (implied && (!implied.checked || ticked.length !== 1)) {
      implied.checked = false;
      implied = null;
    }
    if (ticked.length === 1 && !ticked[0].checked) { ticked[0].checked = true; implied = ticked[0]; }
    radios.forEach((r) => r.closest(".factor-row").classList.toggle("is-main", r.checked));
  }
  function choose(r) { implied = null; r.disabled = false; r.checked = true; sync(); }
  radios.forEach((r) => {
    boxOf(r).addEventListener("change", sync);
    r.addEventListener("change", () => choose(r));
  });
  if (nothing) nothing.addEventListener("change", () => setTimeout(sync, 0));
  // Shortcut -> KeyboardEvent.code: Shift changes e.key ("1" -> "!") but not e.code.
  const byCode = {};
  radios.forEach((r) => {
    const key = (boxOf(r).dataset.shortcut || "").toLowerCase();
    if (!key) return;
    byCode[/^[0-9]$/.test(key) ? "Digit" + key : "Key" + key.toUpperCase()] = r;
  });
  const typing = (el) => el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type === "text"));
  document.addEventListener("keydown", (e) => {
    if (!e.shiftKey || e.ctrlKey || e.metaKey || e.altKey || typing(document.activeElement)) return;
    const r = byCode[e.code];
    if (!r) return;
    e.preventDefault();
    const box = boxOf(r);
    if (!box.checked) { box.checked = true; if (nothing) nothing.checked = false; }
    choose(r);
  });
  // Other scripts tick boxes by keyboard without a change event: keep the radios in step.
  document.addEventListener("keyup", sync);
  sync();
})();
