/* Keyboard shortcuts of the expert workbench (no build step).
 *
 * Every decision is a button (or link) of the item panel carrying data-key="a", "r", "1"…"9", "m", "s", "o"
 * or "u": a key press clicks it, so the keyboard and the mouse take exactly the same path (htmx swaps the next
 * item in). Keys are ignored while typing in a field, with a modifier held, or while a decision is in flight
 * (and the forms drop a second request meanwhile: hx-sync).
 */
(function () {
  "use strict";

  function isTyping(target) {
    return Boolean(target.closest && target.closest("input, textarea, select, [contenteditable]"));
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || isTyping(event.target)) {
      return;
    }
    var panel = document.getElementById("workbench-item");
    if (!panel || panel.querySelector(".htmx-request")) {
      return;
    }
    var control = panel.querySelector('[data-key="' + CSS.escape(event.key.toLowerCase()) + '"]');
    if (!control || control.disabled) {
      return;
    }
    event.preventDefault();
    control.click();
  });

  // After each swap, move the focus to the new item's heading so screen readers announce it.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var title = document.getElementById("item-title");
    if (title && event.target && event.target.id === "workbench-item") {
      title.focus({ preventScroll: false });
    }
  });
})();
