// Keeps the SMTP status bar and the history current while a connection test runs:
// polls the JSON status view and updates the page in place (the form the editor may
// be typing in is left alone). Polling stops when the state is final and pauses while
// the tab is in the background.
(function () {
  "use strict";
  const POLL_MS = 1500;
  const SLOW_POLL_MS = 10000;
  const SELECTOR = "[data-icarus-smtp-status]";
  const STATES = ["not_configured", "started", "running", "complete", "failed"];

  function field(root, name) {
    return root.querySelector(`[data-field="${name}"]`);
  }

  function setText(root, name, value) {
    const element = field(root, name);
    if (element) element.textContent = value || "";
  }

  function show(root, name, visible) {
    const element = field(root, name);
    if (element) element.hidden = !visible;
  }

  function setIcon(root, icon) {
    const use = root.querySelector('[data-field="icon"] use');
    const svg = root.querySelector('[data-field="icon"] svg');
    if (!use || !svg) return;
    use.setAttribute("href", `#icon-${icon}`);
    svg.setAttribute("class", `icon icon-${icon}`);
  }

  function updateBar(bar, report) {
    STATES.forEach((state) => bar.classList.remove(`icarus-smtp-status--${state}`));
    bar.classList.add(`icarus-smtp-status--${report.status}`);
    bar.dataset.status = report.status;
    bar.dataset.final = String(report.final);
    bar.dataset.stale = String(report.stale);
    setIcon(bar, report.icon);
    setText(bar, "status_label", report.status_label);
    setText(bar, "action", report.action);
    setText(bar, "category_label", report.category_label);
    setText(bar, "explanation", report.explanation);
    setText(bar, "fix", report.fix);
    setText(bar, "commands", report.commands || "");
    show(bar, "commands", Boolean(report.commands));
    setText(bar, "reply", report.reply);
    show(bar, "failure", Boolean(report.category));
    show(bar, "reply_row", Boolean(report.reply));
    show(bar, "draft_tag", report.draft_not_in_use);
    show(bar, "discard_row", report.can_discard_draft);
    setText(bar, "detail", report.detail);
    show(bar, "detail_row", Boolean(report.detail));
    setText(bar, "live_note", report.live_note);
    show(bar, "live_note_row", Boolean(report.live_note));
    setText(bar, "stale_hint", report.stale_hint);
    show(bar, "stale_row", report.stale);
    setText(bar, "last_test_label", report.last_test_label);
    setText(bar, "waiting_label", report.waiting_label);
    show(bar, "waiting_row", Boolean(report.waiting_count));
    setText(bar, "enabled_label", report.sending_badge);
    setText(bar, "sending_note", report.sending_note);
    show(bar, "sending_note_row", Boolean(report.sending_note));
    const sending = field(bar, "sending");
    if (sending) {
      for (const name of ["on", "off", "warn"]) {
        sending.classList.toggle(`icarus-smtp-sending--${name}`, report.sending_class === name);
      }
    }
  }

  // The fields a failure is about point to its explanation and fix (aria-describedby),
  // so a screen reader reads cause and fix when the editor goes there to correct it.
  const FAILURE_ID = "icarus-smtp-failure";
  const FIELDS = ["email", "password", "host", "port"];

  function describeAffected(affected) {
    for (const name of FIELDS) {
      const input = document.querySelector(`[name="${name}"]`);
      if (!input) continue;
      const ids = (input.getAttribute("aria-describedby") || "")
        .split(/\s+/)
        .filter((id) => id && id !== FAILURE_ID);
      if (affected.includes(name)) ids.push(FAILURE_ID);
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
      else input.removeAttribute("aria-describedby");
    }
  }

  function cell(content, tag) {
    const td = document.createElement("td");
    if (tag) {
      const inner = document.createElement(tag.name);
      inner.className = tag.className || "";
      if (tag.dateTime) inner.dateTime = tag.dateTime;
      inner.textContent = content;
      if (content) td.appendChild(inner);
    } else {
      td.textContent = content;
    }
    return td;
  }

  // The server's reply as code; a technical detail (no server answered) collapsed.
  function replyCell(event) {
    const td = cell(event.reply, { name: "code" });
    if (event.detail) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = document.querySelector("[data-icarus-smtp-history]").dataset.detailLabel;
      const code = document.createElement("code");
      code.textContent = event.detail;
      details.append(summary, code);
      td.appendChild(details);
    }
    return td;
  }

  function updateHistory(report) {
    document.querySelectorAll("[data-icarus-smtp-history]").forEach((history) => {
      const body = field(history, "events");
      if (!body) return;
      const rows = report.events.map((event) => {
        const row = document.createElement("tr");
        row.append(
          cell(event.time_display, { name: "time", dateTime: event.time }),
          cell(event.kind ? event.kind_label : event.status_label, {
            name: "span",
            className: `w-status icarus-smtp-tag icarus-smtp-tag--${event.kind || event.status}`,
          }),
          cell(event.category_label),
          replyCell(event),
          cell(event.triggered_by),
        );
        return row;
      });
      body.replaceChildren(...rows);
      body.closest("table").hidden = rows.length === 0;
      show(history, "history_empty", rows.length === 0);
    });
  }

  // Once the settings are complete (tested or not), the test e-mail can be sent; the
  // server decides which configuration it uses and says so.
  function updateTestMail(report) {
    const box = document.querySelector("[data-icarus-testmail]");
    const complete = ["running", "complete", "failed"].includes(report.status);
    if (!box || !(report.live || complete)) return;
    show(box, "testmail_unavailable", false);
    box.querySelectorAll("[data-icarus-testmail-to], [data-icarus-testmail-send]").forEach(
      (element) => {
        element.disabled = false;
      },
    );
  }

  function schedule(bar, report) {
    if (report.final) return;
    window.setTimeout(() => poll(bar), report.stale ? SLOW_POLL_MS : POLL_MS);
  }

  function poll(bar) {
    if (document.hidden) {
      // A tab in the background asks nothing; it catches up when it is shown again.
      document.addEventListener("visibilitychange", () => poll(bar), { once: true });
      return;
    }
    fetch(bar.dataset.statusUrl, {
      headers: { "X-Requested-With": "XMLHttpRequest", Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((report) => {
        updateBar(bar, report);
        describeAffected(report.affected_fields || []);
        updateHistory(report);
        updateTestMail(report);
        schedule(bar, report);
      })
      .catch((error) => {
        if (error === 403) return; // no permission (any more): stop quietly
        window.setTimeout(() => poll(bar), SLOW_POLL_MS);
      });
  }

  function watch(bar) {
    if (bar.dataset.final !== "true") {
      schedule(bar, { final: false, stale: bar.dataset.stale === "true" });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(SELECTOR).forEach((bar) => {
      describeAffected((bar.dataset.affectedFields || "").split(" ").filter(Boolean));
      watch(bar);
    });
  });
})();
