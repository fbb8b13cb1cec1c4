// New deal: Enter in a contact or company search looks it up instead of submitting the form.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || !(input instanceof HTMLInputElement) || !input.matches("[data-lookup-search]")) {
      return;
    }
    event.preventDefault();
    if (window.htmx) {
      window.htmx.trigger(input, "search");
    }
  });
})();
