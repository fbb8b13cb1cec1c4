/* DealDesk: small behaviours on top of htmx. No build step, no inline script (CSP). */
(function () {
  "use strict";

  // Swap the bodies of the error answers our views return as partials (validation, conflict,
  // rate limit, upstream down), so the form comes back with its alert instead of nothing.
  if (window.htmx) {
    window.htmx.config.responseHandling = [
      { code: "^204$", swap: false },
      { code: "^(400|409|422|429|502|503)$", swap: true, error: false },
      { code: "^[23]..$", swap: true },
      { code: "[45]..", swap: false, error: true },
    ];
  }

  var FOCUSABLE = "input:not([type=hidden]):not([disabled]), select:not([disabled]), " +
    "textarea:not([disabled]), button:not([disabled])";

  // The region an htmx swap put in place (outerHTML swaps replace the target element).
  function swappedRegion(detail) {
    var target = detail.target;
    if (target && target.id && !document.body.contains(target)) {
      return document.getElementById(target.id);
    }
    return target;
  }

  // Focus follows the edit: into a form when it opens, and back to the field's value when it
  // closes (a screen reader reads the saved value; Tab goes on to its Edit button). The deal's
  // state region has no value to return to, so focus goes back to its button.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var region = swappedRegion(event.detail);
    if (!region || !region.id) {
      return;
    }
    if (!/^field-|^deal-state$/.test(region.id)) {
      return;
    }
    var form = region.querySelector("[data-edit-form]");
    if (form) {
      var invalid = form.querySelector("[aria-invalid=true]");
      var first = invalid || form.querySelector("[autofocus]") || form.querySelector(FOCUSABLE);
      if (first && document.activeElement !== first) {
        first.focus();
      }
      return;
    }
    var back = region.querySelector("[data-focus-value]") ||
      region.querySelector("[data-focus-return]");
    var active = document.activeElement;
    if (back && (!active || active === document.body || !document.body.contains(active))) {
      back.focus();
    }
  });

  // Escape cancels the open inline form.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) {
      return;
    }
    var form = event.target.closest && event.target.closest("[data-edit-form]");
    var cancel = form && form.querySelector("[data-cancel]");
    if (cancel) {
      event.preventDefault();
      cancel.click();
    }
  });

  // Choosing another source clears the stage filter before the list reloads (capture phase,
  // so it runs before htmx reads the form).
  document.addEventListener("change", function (event) {
    var selector = event.target.getAttribute && event.target.getAttribute("data-resets");
    if (!selector) {
      return;
    }
    var dependent = document.querySelector(selector);
    if (dependent) {
      dependent.value = "";
    }
  }, true);

  // Filters land in the URL without empty values, so a shared link stays short.
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.verb !== "get" || event.detail.elt.id !== "deal-filters") {
      return;
    }
    var parameters = event.detail.parameters;
    Object.keys(parameters).forEach(function (key) {
      if (parameters[key] === "") {
        delete parameters[key];
      }
    });
  });

  // While a write is in flight its submit buttons say so with aria-disabled (never `disabled`,
  // which would drop the focus to <body>), and a second submit of the same form is ignored, so a
  // double click acts once.
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.tagName === "FORM" && elt.method === "post") {
      elt.setAttribute("data-busy", "true");
      elt.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.setAttribute("aria-disabled", "true");
      });
    }
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.tagName === "FORM" && document.body.contains(elt)) {
      elt.removeAttribute("data-busy");
      elt.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.removeAttribute("aria-disabled");
      });
    }
  });
  document.addEventListener("submit", function (event) {
    if (event.target.getAttribute && event.target.getAttribute("data-busy") === "true") {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);
})();
