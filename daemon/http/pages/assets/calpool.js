// calpool's customer pages work without this script; with it, a page shows
// times in the browser's own zone, and the zone picker applies on change.
(function () {
  "use strict";
  var root = document.documentElement;
  if (root.getAttribute("data-autozone") === "1") {
    var url = new URL(window.location.href);
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      zone = "";
    }
    if (zone && !url.searchParams.has("timezone") && zone !== root.getAttribute("data-timezone")) {
      url.searchParams.set("timezone", zone);
      window.location.replace(url.toString());
      return;
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("timezone");
    if (select && select.form) {
      select.addEventListener("change", function () { select.form.submit(); });
    }
  });
})();
