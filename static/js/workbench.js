/* Keyboard shortcuts of the expert workbench (no build step).
 *
 * Every decision is a button (or link) of the item panel carrying data-key="a", "r", "1"…"9", "m", "s", "o"
 * or "u": a key press clicks it, so the keyboard and the mouse take exactly the same path (htmx swaps the next
 * item in). Keys are ignored while typing in a field, with a modifier held, or while a decision is in flight
 * (and the forms drop a second request meanwhile: hx-sync). A shortcut that does not apply to the item on screen
 * ("m" on a flag, "u" with nothing to undo) says so in #workbench-key-hint instead of doing nothing silently.
 */
(function () {
  "use strict";

  var SHORTCUTS = /^[armsou1-9]$/;

  function hint(text) {
    var box = document.getElementById("workbench-key-hint");
    if (!box) {
      return;
    }
    box.textContent = text;
    box.hidden = !text;
  }

  function offeredKeys(panel) {
    var controls = panel.querySelectorAll ? panel.querySelectorAll("[data-key]") : [];
    var keys = [];
    for (var i = 0; i < controls.length; i++) {
      if (!controls[i].disabled && keys.indexOf(controls[i].dataset.key) < 0) {
        keys.push(controls[i].dataset.key);
      }
    }
    return keys;
  }

  function notApplicable(panel, key) {
    var box = document.getElementById("workbench-key-hint");
    if (!box) {
      return;
    }
    var text = (box.dataset.message || "").replace("{key}", key);
    var keys = offeredKeys(panel);
    if (keys.length && box.dataset.offered) {
      text += " " + box.dataset.offered.replace("{keys}", keys.join(", "));
    }
    hint(text);
  }

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
    var key = event.key.toLowerCase();
    var control = panel.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!control || control.disabled) {
      if (SHORTCUTS.test(key)) {
        notApplicable(panel, key);
      }
      return;
    }
    event.preventDefault();
    hint("");
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
