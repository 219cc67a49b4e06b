// Roster console: progressive enhancement only. Every page works without this file; it adds
// copy buttons, modal confirmation dialogs (the server renders them open without script; a
// form marked data-confirm gets the layout's dialog), and the live identity-provider guide.
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

  // A form with data-confirm asks first, in the console's own dialog (dlg-confirm, in the
  // layout) like every other confirmation, never the browser's confirm(): its text is the
  // attribute, its button's label data-confirm-action.
  var pending = null;
  document.addEventListener("submit", function (e) {
    var f = e.target;
    var msg = f.getAttribute && f.getAttribute("data-confirm");
    var d = document.getElementById("dlg-confirm");
    if (!msg || !d || !d.showModal) return;
    e.preventDefault();
    document.getElementById("dlg-confirm-d").textContent = msg;
    document.getElementById("dlg-confirm-ok").textContent =
      f.getAttribute("data-confirm-action") || "Confirm";
    pending = f;
    openDialog("dlg-confirm");
  });
  document.addEventListener("click", function (e) {
    if (!e.target.closest("#dlg-confirm-ok") || !pending) return;
    var f = pending;
    pending = null;
    document.getElementById("dlg-confirm").close();
    // submit() sends the form without another submit event, so without asking again.
    f.submit();
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
