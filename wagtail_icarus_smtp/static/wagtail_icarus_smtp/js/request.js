// One way for our admin controllers to ask the server: same-origin, marked as XHR (our
// views answer 403 instead of a login redirect), with the CSRF token for POSTs.
// Loaded on every admin page before the controllers (wagtail_hooks.global_admin_js).
(() => {
  function csrfToken() {
    const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    if (input) return input.value;
    const config = document.getElementById("wagtail-config");
    return config ? JSON.parse(config.textContent).CSRF_TOKEN || "" : "";
  }

  // Resolves with the response (also 4xx: our views answer those with a body too);
  // rejects only when no answer came.
  function request(url, { method = "GET", body = null, accept = "application/json" } = {}) {
    const headers = { "X-Requested-With": "XMLHttpRequest", Accept: accept };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    return fetch(url, {
      method,
      body,
      headers,
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
    });
  }

  window.icarusSmtp = { ...window.icarusSmtp, request };
})();
