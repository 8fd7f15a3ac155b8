// entrasync: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Settings (cog) menu: a disclosure button with a menu of links; Escape closes it.
  var cog = document.getElementById("settings-button");
  var menu = document.getElementById("settings-menu");
  if (cog && menu) {
    var setOpen = function (open) {
      menu.hidden = !open;
      cog.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) { var first = menu.querySelector("[role=menuitem]"); if (first) first.focus(); }
    };
    cog.addEventListener("click", function () { setOpen(menu.hidden); });
    menu.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { setOpen(false); cog.focus(); }
    });
    document.addEventListener("click", function (e) {
      if (!menu.hidden && !menu.contains(e.target) && e.target !== cog && !cog.contains(e.target)) setOpen(false);
    });
  }

  // Modal dialogs: buttons with data-open-dialog open them; a dialog re-rendered with errors opens itself.
  document.querySelectorAll("[data-open-dialog]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var dlg = document.getElementById(btn.getAttribute("data-open-dialog"));
      if (dlg && !dlg.open) dlg.showModal();
    });
  });
  document.querySelectorAll("dialog").forEach(function (dlg) {
    if (dlg.hasAttribute("data-open-on-load")) dlg.showModal();
    dlg.addEventListener("close", function () {
      // Cancel forgets unsaved edits: reopened, the dialog shows the saved values.
      if (dlg.returnValue === "cancel" && !dlg.hasAttribute("data-open-on-load")) {
        var form = dlg.querySelector("form");
        if (form) form.reset();
      }
      dlg.returnValue = "";
    });
  });

  // Confirm destructive forms.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  });

  // ARIA tabs (links): arrow keys move between tabs.
  document.querySelectorAll("[role=tablist]").forEach(function (list) {
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
    list.addEventListener("keydown", function (e) {
      var i = tabs.indexOf(document.activeElement);
      if (i < 0) return;
      var next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : e.key === "Home" ? 0 : e.key === "End" ? tabs.length - 1 : null;
      if (next === null) return;
      e.preventDefault();
      tabs[(next + tabs.length) % tabs.length].focus();
    });
  });

  // A running refresh: poll its progress, reload when it ends.
  var poll = document.querySelector("[data-poll]");
  if (poll) {
    var url = poll.getAttribute("data-poll");
    var tick = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (run) {
          if (!run) return;
          if (run.outcome !== "running") { window.location.reload(); return; }
          var p = run.progress || {};
          poll.textContent = "Refresh running (run " + run.id + "): " + (p.phase || "starting") +
            (p.people_read ? ", " + p.people_read + " people read" : "") + "…";
          window.setTimeout(tick, 1000);
        })
        .catch(function () { window.setTimeout(tick, 3000); });
    };
    window.setTimeout(tick, 700);
  }
})();
