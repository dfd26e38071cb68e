// Dark/light theme. Loaded in <head> as a classic script so the saved choice
// applies before the first paint. Without a saved choice the system's
// preference decides (console.css, prefers-color-scheme).
(function () {
  "use strict";
  var KEY = "wsgi-fleet.theme";
  var root = document.documentElement;

  function saved() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function current() {
    var theme = root.getAttribute("data-theme");
    if (theme === "dark" || theme === "light") return theme;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
  }
  function apply(theme) {
    root.setAttribute("data-theme", theme);
    var button = document.getElementById("theme-toggle");
    if (button) button.textContent = theme === "dark" ? "Light theme" : "Dark theme";
    // Charts paint on canvas and read the colours when they draw: tell them.
    document.dispatchEvent(new CustomEvent("themechange", { detail: { theme: theme } }));
  }

  var initial = saved();
  if (initial === "dark" || initial === "light") root.setAttribute("data-theme", initial);

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    button.textContent = current() === "dark" ? "Light theme" : "Dark theme";
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      apply(next);
    });
  });
})();
