// Roster console: progressive enhancement only. Every page works without this file; it adds
// copy buttons, modal confirmation dialogs, the live identity-provider guide, and confirm()
// before deleting a role mapping.
"use strict";
(function () {
  function copy(button) {
    var src = document.getElementById(button.getAttribute("data-copy"));
    if (!src) return;
    var text = src.value !== undefined ? src.value : src.textContent;
    var label = button.textContent;
    function done(ok) {
      button.textContent = ok ? "Copied" : "Press Ctrl+C to copy";
      setTimeout(function () { button.textContent = label; }, 1800);
    }
    function fallback() {
      if (src.select) src.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      done(ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
    } else {
      fallback();
    }
  }

  function openDialog(id) {
    var d = document.getElementById(id);
    if (!d || !d.showModal) return false;
    if (d.open) d.close();
    d.showModal();
    return true;
  }

  document.addEventListener("click", function (e) {
    var t = e.target.closest("[data-copy]");
    if (t) { copy(t); return; }
    var o = e.target.closest("[data-open]");
    // Without script the button submits a GET that renders the dialog open; with it, the
    // dialog opens as a modal (focus trapped inside, Escape closes it).
    if (o && openDialog(o.getAttribute("data-open"))) e.preventDefault();
  });

  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  function showGuide(select) {
    var guides = document.querySelectorAll("[data-guide]");
    for (var i = 0; i < guides.length; i++) {
      guides[i].hidden = guides[i].getAttribute("data-guide") !== select.value;
    }
  }

  document.addEventListener("change", function (e) {
    if (e.target.matches("[data-show-guide]")) showGuide(e.target);
  });

  document.addEventListener("DOMContentLoaded", function () {
    // A dialog the server rendered open (no-script confirmation) becomes a real modal.
    var open = document.querySelectorAll("dialog[open]");
    for (var i = 0; i < open.length; i++) openDialog(open[i].id);
  });
})();
