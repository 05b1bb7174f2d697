// The SMTP settings form: provider presets and the suggestion, the sign-in method's
// fields, asking for the admin password only when the target changes, clearing a red
// frame once a required field is filled, and the sending switch's warning. Each is a
// Stimulus controller; the "Access data" panel carries the first four
// (admin/panels.settings_panels), the switch its own.
(() => {
  const { Controller } = window.StimulusModule;

  function setValue(input, value) {
    input.value = value === null || value === undefined ? "" : value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function check(radio) {
    if (!radio || radio.checked) return;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // Set a form field by name, whatever its widget (text, number, select, radio, checkbox).
  function setField(root, name, value) {
    const inputs = Array.from(root.querySelectorAll(`[name="${name}"]`));
    if (!inputs.length) return;
    if (inputs[0].type === "radio") {
      check(inputs.find((radio) => radio.value === String(value)));
    } else if (inputs[0].type === "checkbox") {
      inputs[0].checked = Boolean(value);
      inputs[0].dispatchEvent(new Event("change", { bubbles: true }));
    } else {
      setValue(inputs[0], value);
    }
  }

  // Provider presets: choosing one applies all its fields (providers.as_json_data) and
  // shows its hint; an address at a provider's domain suggests that provider.
  window.wagtail.app.register(
    "icarus-smtp-provider",
    class extends Controller {
      static targets = ["hint", "hintText", "suggestion", "suggestionText", "suggestionTemplate"];

      connect() {
        const data = this.element.querySelector("#icarus-smtp-providers");
        this.presets = data ? JSON.parse(data.textContent) : {};
        this.suggested = "";
        this.suggest();
      }

      field(name) {
        return this.element.querySelector(`[name="${name}"]`);
      }

      changed({ target }) {
        if (target.name === "provider") this.choose(target.value);
        if (target.name === "host") this.splitPort(target);
      }

      typed({ target }) {
        if (target.name === "email") this.suggest();
      }

      choose(key) {
        const preset = this.presets[key];
        this.suggestionTarget.hidden = true;
        this.hintTarget.hidden = !(preset && preset.hint);
        this.hintTextTarget.textContent = preset ? preset.hint : "";
        if (!preset) return;
        // "Other provider" has no server: it clears the previous provider's values,
        // but nothing the editor typed herself.
        if (!preset.fields.host && !this.isPresetServer(this.field("host").value)) return;
        for (const [name, value] of Object.entries(preset.fields)) {
          setField(this.element, name, value);
        }
      }

      // A provider's own server, still in the field when another one is chosen.
      isPresetServer(value) {
        const name = value.trim().toLowerCase();
        return Boolean(name) && Object.values(this.presets).some((p) => p.fields.host === name);
      }

      // "smtp.ionos.de:587" typed into the server field: the port goes to its own field
      // (the server checks the same and explains a conflict).
      splitPort(host) {
        const port = this.field("port");
        const match = /^([^:[\]]+):(\d{1,5})$/.exec(host.value.trim());
        if (!match || (port.value && port.value !== match[2] && port.value !== port.defaultValue)) {
          return;
        }
        setValue(host, match[1]);
        setValue(port, match[2]);
      }

      suggest() {
        const email = this.field("email");
        const provider = this.field("provider");
        if (!email || !provider) return;
        const domain = (email.value.split("@")[1] || "").trim().toLowerCase();
        this.suggested =
          Object.keys(this.presets).find((key) => this.presets[key].domains.includes(domain)) || "";
        const show = Boolean(this.suggested) && provider.value !== this.suggested;
        this.suggestionTarget.hidden = !show;
        if (show) {
          this.suggestionTextTarget.textContent = this.suggestionTemplateTarget.content.textContent.replace(
            "__PROVIDER__",
            this.presets[this.suggested].label,
          );
        }
      }

      apply() {
        if (!this.suggested) return;
        setField(this.element, "provider", this.suggested);
      }
    },
  );

  // Sign-in method: only the chosen method's fields are shown (the server already hides
  // the others, so the page is right before this runs).
  window.wagtail.app.register(
    "icarus-smtp-auth-method",
    class extends Controller {
      connect() {
        this.show();
      }

      show() {
        const checked = this.element.querySelector('[name="auth_method"]:checked');
        const method = checked ? checked.value : "password";
        for (const box of this.element.querySelectorAll("[data-icarus-auth-method]")) {
          box.hidden = !box.dataset.icarusAuthMethod.split(" ").includes(method);
        }
      }
    },
  );

  // The admin password is only asked for once the server, port, address or sign-in
  // differ from what is stored (the server decides; this only keeps the field out of
  // the way until then).
  const TARGET_FIELDS = ["host", "port", "email", "oauth_tenant_id", "oauth_client_id"];

  window.wagtail.app.register(
    "icarus-smtp-confirm",
    class extends Controller {
      connect() {
        const input = this.element.querySelector('[name="confirm_password"]');
        this.box = input && input.closest(".w-panel__wrapper");
        if (!this.box) return;
        this.hasError = Boolean(this.box.querySelector("[data-field-errors] .error-message"));
        this.update();
      }

      update() {
        if (!this.box) return;
        const methods = Array.from(this.element.querySelectorAll('[name="auth_method"]'));
        const methodChanged = methods.some((radio) => radio.checked !== radio.defaultChecked);
        const targetChanged = TARGET_FIELDS.map((name) =>
          this.element.querySelector(`[name="${name}"]`),
        ).some((field) => field && field.value !== field.defaultValue);
        this.box.hidden = !this.hasError && !methodChanged && !targetChanged;
      }
    },
  );

  // A required field framed red while empty: the frame and message go once it is filled
  // and come back when it is emptied again.
  window.wagtail.app.register(
    "icarus-smtp-required",
    class extends Controller {
      connect() {
        this.saved = new Map();
        for (const input of this.element.querySelectorAll('[aria-invalid="true"]')) {
          const errors = this.errorsOf(input);
          if (errors) this.saved.set(input, errors.innerHTML);
        }
      }

      errorsOf(input) {
        const field = input.closest(".w-field");
        return field && field.querySelector("[data-field-errors]");
      }

      check({ target: input }) {
        if (!this.saved.has(input)) return;
        const empty = !input.value.trim();
        input.closest(".w-field").classList.toggle("w-field--error", empty);
        input.setAttribute("aria-invalid", String(empty));
        this.errorsOf(input).innerHTML = empty ? this.saved.get(input) : "";
      }
    },
  );

  // The sending switch: what "on" and "off" mean, and the warning while it is off.
  window.wagtail.app.register(
    "icarus-smtp-switch",
    class extends Controller {
      static targets = ["on", "off"];

      update({ target }) {
        if (target.type !== "checkbox") return;
        for (const on of this.onTargets) on.hidden = !target.checked;
        for (const off of this.offTargets) off.hidden = target.checked;
      }
    },
  );
})();
