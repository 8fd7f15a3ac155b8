// entrasync: small progressive enhancements over real HTML controls. Every page works without this file.
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

  // Modal dialogs. A dialog re-rendered after a failed Save opens itself and puts focus on its error
  // summary (which counts the problems and links each to its field), not on the first control.
  var openModal = function (dlg, opener) {
    if (dlg.open) dlg.close(); // rendered open for browsers without JavaScript: make it modal
    dlg.showModal();
    var summary = dlg.querySelector(".error-summary");
    var preview = dlg.querySelector(".preview[tabindex]");
    if (summary) summary.focus();
    else if (preview) { preview.focus(); preview.scrollIntoView({ block: "start" }); }
    dlg._opener = opener || null;
  };
  document.querySelectorAll("[data-open-dialog]").forEach(function (el) {
    el.addEventListener("click", function (e) {
      var dlg = document.getElementById(el.getAttribute("data-open-dialog"));
      if (!dlg || typeof dlg.showModal !== "function") return; // follow the link instead
      e.preventDefault();
      openModal(dlg, el);
    });
    if (el.getAttribute("role") === "button") {
      el.addEventListener("keydown", function (e) { if (e.key === " ") { e.preventDefault(); el.click(); } });
    }
  });
  // Held or large plans: Apply first shows the counts in a dialog (without JavaScript, a step page does).
  document.querySelectorAll("[data-confirm-dialog]").forEach(function (btn) {
    btn.addEventListener("click", function (e) {
      var dlg = document.getElementById(btn.getAttribute("data-confirm-dialog"));
      if (!dlg || typeof dlg.showModal !== "function") return;
      e.preventDefault();
      openModal(dlg, btn);
    });
  });
  document.querySelectorAll("dialog").forEach(function (dlg) {
    if (dlg.hasAttribute("data-open-on-load")) openModal(dlg, document.querySelector("[data-open-dialog='" + dlg.id + "']"));
    dlg.addEventListener("close", function () {
      // Cancel (or ×, or Escape) forgets unsaved edits: reopened, the dialog shows the saved values.
      if (dlg.returnValue !== "" && !dlg.hasAttribute("data-open-on-load")) {
        dlg.querySelectorAll("form.modal-form").forEach(function (f) { f.reset(); });
      }
      dlg.returnValue = "";
      if (dlg._opener && document.contains(dlg._opener)) dlg._opener.focus();
    });
    dlg.addEventListener("cancel", function () { dlg.returnValue = "cancel"; });
  });

  // After an action the page says what happened in a status message (or what went wrong and what to
  // do): move focus there, not to <body>.
  var said = document.querySelector("main .flash, main .problem[tabindex]");
  if (said && !document.querySelector("dialog[open]")) said.focus();

  // An error summary's links move focus to their field (a fragment link alone only scrolls).
  document.querySelectorAll(".error-summary a[href^='#']").forEach(function (a) {
    a.addEventListener("click", function (e) {
      var field = document.getElementById(a.getAttribute("href").slice(1));
      if (!field) return;
      e.preventDefault();
      field.focus();
      field.scrollIntoView({ block: "center" });
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

  // Organisation chart: a team opens in place. The link (which reloads the page with the team open)
  // becomes a button that fetches just that team's list, once, then shows and hides it.
  var wireToggles = function (root) {
    root.querySelectorAll("a.toggle[data-team]").forEach(function (t) {
      if (t._wired) return;
      t._wired = true;
      t.setAttribute("role", "button");
      t.addEventListener("keydown", function (e) { if (e.key === " ") { e.preventDefault(); t.click(); } });
      t.addEventListener("click", function (e) {
        e.preventDefault();
        var li = t.closest("li.node");
        var list = li && li.querySelector(":scope > ul.tree-children");
        var open = t.getAttribute("aria-expanded") === "true";
        if (open) { if (list) list.hidden = true; t.setAttribute("aria-expanded", "false"); return; }
        if (list) { list.hidden = false; t.setAttribute("aria-expanded", "true"); return; }
        if (t.getAttribute("aria-busy") === "true") return;
        t.setAttribute("aria-busy", "true");
        fetch(t.getAttribute("data-team"), { credentials: "same-origin", headers: { Accept: "text/html" } })
          .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
          .then(function (html) {
            var holder = document.createElement("div");
            holder.innerHTML = html; // our own server-rendered, escaped fragment
            var ul = holder.querySelector("ul.tree-children");
            if (!ul) throw new Error("no team");
            li.appendChild(ul);
            t.setAttribute("aria-controls", ul.id);
            t.setAttribute("aria-expanded", "true");
            wireToggles(ul);
          })
          .catch(function () { window.location.href = t.getAttribute("href"); })
          .then(function () { t.removeAttribute("aria-busy"); });
      });
    });
  };
  wireToggles(document);

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
