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
        dlg.querySelectorAll("#settings-preview").forEach(function (x) { x.remove(); });
      }
      dlg.returnValue = "";
      if (dlg._opener && document.contains(dlg._opener)) dlg._opener.focus();
    });
    dlg.addEventListener("cancel", function () { dlg.returnValue = "cancel"; });
  });

  // Sync Settings' Preview: the unsaved settings go to POST /api/v1/settings/preview (the body of PUT
  // /settings) and the plan's counts and first changes appear in the dialog. Anything but a 200 (a
  // problem to fix) submits the form instead, so the page shows the errors exactly as a Save does;
  // without JavaScript the button posts the form to /user-sync/settings/preview.
  document.querySelectorAll("button[data-preview-api]").forEach(function (btn) {
    var form = btn.form;
    if (!form || typeof fetch !== "function") return;
    var fallback = function () { btn._fallback = true; form.requestSubmit ? form.requestSubmit(btn) : form.submit(); };
    var list = function (v) { return String(v || "").split(",").map(function (x) { return x.trim(); }).filter(Boolean); };
    btn.addEventListener("click", function (e) {
      if (btn._fallback) return;
      var fd = new FormData(form);
      var guard = Number(fd.get("guard_percent"));
      if (!isFinite(guard) || String(fd.get("guard_percent") || "").trim() === "") return; // the server explains
      e.preventDefault();
      var rid = fd.get("recipient_id");
      var body = {
        strategy: fd.get("strategy"), refresh_time: fd.get("refresh_time"), mode: fd.get("mode"),
        notify: fd.get("notify") === "yes", recipient_id: rid ? Number(rid) : null,
        graph_filter_on: fd.has("graph_filter_on"), graph_filter: fd.get("graph_filter") || "",
        email_filter_on: fd.has("email_filter_on"), email_include: list(fd.get("email_include")),
        email_exclude: list(fd.get("email_exclude")), group_filter_on: fd.has("group_filter_on"),
        group_ids: list(fd.get("group_ids")), guard_percent: guard
      };
      btn.setAttribute("aria-busy", "true");
      fetch(btn.getAttribute("data-preview-api"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": fd.get("csrf_token") },
        body: JSON.stringify(body)
      })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (pv) { showPreview(form, pv); })
        .catch(fallback)
        .then(function () { btn.removeAttribute("aria-busy"); });
    });
  });
  var showPreview = function (form, pv) {
    var old = form.querySelector("#settings-preview");
    if (old) old.remove();
    form.querySelectorAll(".error-summary, .field-error").forEach(function (x) { x.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (x) { x.removeAttribute("aria-invalid"); });
    var el = function (tag, cls, text) {
      var n = document.createElement(tag);
      if (cls) n.className = cls;
      if (text !== undefined) n.textContent = text;
      return n;
    };
    var c = pv.counts;
    var sec = el("section", "preview");
    sec.id = "settings-preview";
    sec.tabIndex = -1;
    sec.setAttribute("aria-labelledby", "settings-preview-title");
    var h = el("h3", "", "Preview: the plan these settings would produce (not saved)");
    h.id = "settings-preview-title";
    sec.appendChild(h);
    var words = c.create + " to create, " + c.update + " to update, " + c.move + " to move, " + c.archive +
      " to archive, " + c.restore + " to restore; " + c.matched + " matched" +
      (c.overridden ? ", " + c.overridden + " overridden" : "") + (c.conflicts ? ", " + c.conflicts + " conflicts" : "") + "." +
      (pv.matching_users !== null && pv.matching_users !== undefined ? " " + pv.matching_users + " users match the filters." : "");
    sec.appendChild(el("p", "preview-counts", words));
    if (pv.held) sec.appendChild(el("p", "warning", "The safety guard would hold this plan for review: " + pv.hold_reason));
    if (pv.warning) sec.appendChild(el("p", "warning", pv.warning));
    if (pv.changes.length) {
      sec.appendChild(el("p", "muted", "The first " + pv.changes.length + " of " + pv.total_changes + " changes:"));
      var ul = el("ul", "preview-changes");
      pv.changes.forEach(function (ch) {
        var li = el("li");
        li.appendChild(el("span", "tag", ch.kind));
        li.appendChild(document.createTextNode(" " + (ch.display_name || ch.email || ch.target_email || "") + " "));
        li.appendChild(el("span", "muted", (ch.email || ch.target_email || "") + " · " + ch.reason.replace(/_/g, " ")));
        if (ch.diffs.length && ch.kind !== "archive") {
          li.appendChild(el("span", "sub", ch.diffs.map(function (d) {
            var v = function (x) { return x === null || x === undefined ? "–" : String(x); };
            return d.field + ": " + v(d.old) + " → " + v(d["new"]) + (d.manual_edit ? " (edited by hand)" : "");
          }).join("; ")));
        }
        ul.appendChild(li);
      });
      sec.appendChild(ul);
    } else {
      sec.appendChild(el("p", "", "No change: the directory already matches."));
    }
    form.querySelector(".modal-body").appendChild(sec);
    sec.focus();
    sec.scrollIntoView({ block: "start" });
  };

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
