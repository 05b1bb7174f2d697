// The SMTP settings page: provider presets and suggestions, the sending switch's
// warning, clearing a red frame once a required field is filled, and the test e-mail.
(function () {
  "use strict";

  function byName(name) {
    return document.querySelector(`[name="${name}"]`);
  }

  // -- provider presets ----------------------------------------------------------------

  function setupProviders() {
    const data = document.getElementById("icarus-smtp-providers");
    const select = byName("provider");
    if (!data || !select) return;
    const presets = JSON.parse(data.textContent);
    const host = byName("host");
    const port = byName("port");
    const limit = byName("send_limit");
    const period = byName("send_limit_period");
    const email = byName("email");
    const hintBox = document.querySelector("[data-icarus-provider-hint]");
    const suggestionBox = document.querySelector("[data-icarus-provider-suggestion]");
    const suggestionTemplate = document.getElementById("icarus-smtp-suggestion-text");
    let suggested = "";

    function showHint(key) {
      const preset = presets[key];
      hintBox.hidden = !(preset && preset.hint);
      hintBox.querySelector('[data-field="provider_hint"]').textContent = preset ? preset.hint : "";
    }

    function setValue(input, value) {
      input.value = value;
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    // A provider's own server and port, still in the fields when another one is chosen.
    function isPresetServer(value) {
      const name = value.trim().toLowerCase();
      return Boolean(name) && Object.values(presets).some((preset) => preset.host === name);
    }

    function fill(key) {
      const preset = presets[key];
      if (!preset) return;
      if (!preset.host) {
        // "Other provider": the previous provider's server and port do not apply.
        if (isPresetServer(host.value)) {
          setValue(host, "");
          setValue(port, "");
        }
        return;
      }
      setValue(host, preset.host);
      setValue(port, preset.port);
      // The provider's documented send limit; empty where it documents none.
      if (limit) setValue(limit, preset.send_limit === null ? "" : preset.send_limit);
      if (period) setValue(period, preset.send_limit_period);
    }

    // "smtp.ionos.de:587" typed into the server field: the port goes to its own field
    // (the server checks the same and explains a conflict).
    host.addEventListener("change", () => {
      const match = /^([^:[\]]+):(\d{1,5})$/.exec(host.value.trim());
      if (!match || (port.value && port.value !== match[2] && port.value !== port.defaultValue)) {
        return;
      }
      setValue(host, match[1]);
      setValue(port, match[2]);
    });

    function choose(key) {
      select.value = key;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }

    select.addEventListener("change", () => {
      const method = presets[select.value] && presets[select.value].auth_method;
      if (method) chooseMethod(method);
      fill(select.value);
      showHint(select.value);
      suggestionBox.hidden = true;
    });

    function suggest() {
      const domain = (email.value.split("@")[1] || "").trim().toLowerCase();
      suggested = Object.keys(presets).find((key) => presets[key].domains.includes(domain)) || "";
      const show = Boolean(suggested) && select.value !== suggested;
      suggestionBox.hidden = !show;
      if (show) {
        suggestionBox.querySelector('[data-field="suggestion_text"]').textContent =
          suggestionTemplate.content.textContent.replace("__PROVIDER__", presets[suggested].label);
      }
    }

    email.addEventListener("input", suggest);
    suggestionBox.querySelector("[data-icarus-provider-apply]").addEventListener("click", () => {
      if (suggested) choose(suggested);
    });
    suggest();
  }

  // -- sign-in method: only the chosen method's fields are shown -------------------------

  function chosenMethod() {
    const checked = document.querySelector('[name="auth_method"]:checked');
    return checked ? checked.value : "password";
  }

  function showMethodFields() {
    const method = chosenMethod();
    document.querySelectorAll("[data-icarus-auth-method]").forEach((box) => {
      box.hidden = !box.dataset.icarusAuthMethod.split(" ").includes(method);
    });
  }

  function chooseMethod(method) {
    const radio = document.querySelector(`[name="auth_method"][value="${method}"]`);
    if (!radio || radio.checked) return;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function setupMethods() {
    document.querySelectorAll('[name="auth_method"]').forEach((radio) => {
      radio.addEventListener("change", showMethodFields);
    });
    showMethodFields();
  }

  // -- the sending switch ------------------------------------------------------------------

  function setupSwitch() {
    const box = document.querySelector("[data-icarus-switch]");
    if (!box) return;
    const input = document.getElementById(box.dataset.fieldId);
    if (!input) return;
    const update = () => {
      box.querySelector("[data-icarus-switch-on]").hidden = !input.checked;
      box.querySelector("[data-icarus-switch-off]").hidden = input.checked;
      box.querySelector("[data-icarus-switch-warning]").hidden = input.checked;
    };
    input.addEventListener("change", update);
    update();
  }

  // -- red frames ----------------------------------------------------------------------------

  function setupRequiredFrames() {
    document.querySelectorAll('[aria-invalid="true"]').forEach((input) => {
      const field = input.closest(".w-field");
      const errors = field && field.querySelector("[data-field-errors]");
      if (!field || !errors) return;
      const saved = errors.innerHTML;
      input.addEventListener("input", () => {
        const empty = !input.value.trim();
        field.classList.toggle("w-field--error", empty);
        input.setAttribute("aria-invalid", String(empty));
        errors.innerHTML = empty ? saved : "";
      });
    });
  }

  // -- test e-mail -----------------------------------------------------------------------------

  // -- confirming a changed target ------------------------------------------------------
  // The admin password is only asked for once server, port or e-mail differ from what is
  // stored (the server decides; this only keeps the field out of the way until then).

  function setupConfirmation() {
    const input = byName("confirm_password");
    if (!input) return;
    const box = input.closest(".w-panel__wrapper");
    const targets = ["host", "port", "email", "oauth_tenant_id", "oauth_client_id"]
      .map(byName)
      .filter(Boolean);
    const methods = Array.from(document.querySelectorAll('[name="auth_method"]'));
    const methodChanged = () => methods.some((radio) => radio.checked !== radio.defaultChecked);
    const hasError = Boolean(box.querySelector("[data-field-errors] .error-message"));
    const update = () => {
      box.hidden =
        !hasError &&
        !methodChanged() &&
        targets.every((field) => field.value === field.defaultValue);
    };
    for (const radio of methods) radio.addEventListener("change", update);
    for (const field of targets) {
      field.addEventListener("input", update);
      field.addEventListener("change", update);
    }
    update();
  }

  function setupTestMail() {
    const box = document.querySelector("[data-icarus-testmail]");
    if (!box) return;
    const button = box.querySelector("[data-icarus-testmail-send]");
    const to = box.querySelector("[data-icarus-testmail-to]");
    const result = box.querySelector("[data-icarus-testmail-result]");
    const text = (name) => box.querySelector(`[data-field="${name}"]`);
    const label = button.querySelector("[data-label]");
    const idleLabel = label.textContent;

    function render(outcome) {
      result.hidden = false;
      text("testmail_box").className = outcome.ok
        ? "help-block help-info icarus-smtp-success"
        : "help-block help-critical";
      const icon = outcome.ok ? "success" : "warning";
      const svg = text("testmail_icon").querySelector("svg");
      svg.setAttribute("class", `icon icon-${icon}`);
      svg.querySelector("use").setAttribute("href", `#icon-${icon}`);
      text("testmail_message").textContent = outcome.message;
      const details = [outcome.category_label, outcome.explanation, outcome.fix]
        .filter(Boolean)
        .join(" — ");
      text("testmail_details").textContent = details;
      text("testmail_details").hidden = !details;
      text("testmail_reply").textContent = outcome.reply || "";
      text("testmail_reply_row").hidden = !outcome.reply;
      text("testmail_detail").textContent = outcome.detail || "";
      text("testmail_detail_row").hidden = !outcome.detail;
      text("testmail_transcript").textContent = outcome.transcript || "";
      text("testmail_transcript_row").hidden = !outcome.transcript;
      text("testmail_configuration").textContent = outcome.configuration_label || "";
      text("testmail_configuration").hidden = !outcome.configuration_label;
      // Keyboard and screen-reader users land on the result, not back on the button.
      result.focus();
    }

    button.addEventListener("click", () => {
      const csrf = document.querySelector('input[name="csrfmiddlewaretoken"]');
      const body = new FormData();
      body.append("to", to.value.trim());
      button.disabled = true;
      label.textContent = box.querySelector("template[data-icarus-testmail-sending]").content.textContent;
      fetch(box.dataset.url, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: {
          "X-Requested-With": "XMLHttpRequest",
          "X-CSRFToken": csrf ? csrf.value : "",
          Accept: "application/json",
        },
      })
        .then((response) => response.json())
        .then(render)
        .catch(() =>
          render({
            ok: false,
            message: box.querySelector("template[data-icarus-testmail-error]").content.textContent,
          }),
        )
        .finally(() => {
          button.disabled = false;
          label.textContent = idleLabel;
        });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupMethods();
    setupProviders();
    setupSwitch();
    setupRequiredFrames();
    setupConfirmation();
    setupTestMail();
  });
})();
