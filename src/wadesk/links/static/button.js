/* wadesk floating WhatsApp button. Makes no request of its own: the button is a plain link
   to the short URL. Per page, data-* attributes on this script tag override the settings:
   data-text, data-color, data-text-color, data-position (bottom-right | bottom-left),
   data-offset (pixels), data-devices (all | mobile | desktop), data-hide-outside-hours. */
(function () {
  "use strict";
  var config = /*CONFIG*/ {};
  var script = document.currentScript;

  function attr(name) {
    return script ? script.getAttribute("data-" + name) : null;
  }

  function choose(name, fallback, valid) {
    var value = attr(name);
    return value !== null && valid(value) ? value : fallback;
  }

  var isColor = function (v) { return /^#[0-9a-fA-F]{6}$/.test(v); };
  var settings = {
    color: choose("color", config.color, isColor),
    textColor: choose("text-color", config.text_color, isColor),
    position: choose("position", config.position, function (v) {
      return v === "bottom-right" || v === "bottom-left";
    }),
    offset: parseInt(choose("offset", String(config.offset), function (v) {
      return /^\d{1,3}$/.test(v);
    }), 10),
    devices: choose("devices", config.devices, function (v) {
      return v === "all" || v === "mobile" || v === "desktop";
    }),
    hideOutsideHours: choose("hide-outside-hours", String(config.hide_outside_hours), function (v) {
      return v === "true" || v === "false";
    }) === "true" && !!config.hours
  };

  function label() {
    var own = attr("text");
    if (own) return own;
    var wanted = [document.documentElement.lang].concat(
      navigator.languages ? Array.prototype.slice.call(navigator.languages) : [navigator.language]
    );
    var translations = config.translations || {};
    for (var i = 0; i < wanted.length; i++) {
      var tag = wanted[i];
      if (!tag) continue;
      for (var key in translations) {
        if (key.toLowerCase() === tag.toLowerCase()) return translations[key];
      }
      var primary = tag.split("-")[0].toLowerCase();
      for (key in translations) {
        if (key.toLowerCase() === primary) return translations[key];
      }
    }
    return config.text;
  }

  function openAt(date) {
    var hours = config.hours;
    var parts = {};
    new Intl.DateTimeFormat("en-US", {
      timeZone: hours.time_zone, weekday: "short", hour: "2-digit", minute: "2-digit",
      hourCycle: "h23"
    }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    var day = String(parts.weekday).slice(0, 3).toLowerCase();
    var now = (parts.hour === "24" ? "00" : parts.hour) + ":" + parts.minute;
    var ranges = hours.days[day] || [];
    for (var i = 0; i < ranges.length; i++) {
      if (ranges[i][0] <= now && now < ranges[i][1]) return true;
    }
    return false;
  }

  function rightDevice() {
    if (settings.devices === "all") return true;
    var mobile = window.matchMedia("(pointer: coarse)").matches ||
      /Mobi|Android|iPhone|iPad/i.test(navigator.userAgent);
    return settings.devices === "mobile" ? mobile : !mobile;
  }

  function build() {
    var host = document.createElement("div");
    host.setAttribute("data-wadesk-link", config.slug);
    var side = settings.position === "bottom-left" ? "left" : "right";
    host.style.cssText = "position:fixed;z-index:2147483000;bottom:" + settings.offset + "px;" +
      side + ":" + settings.offset + "px;";
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var style = document.createElement("style");
    style.textContent =
      "a{display:inline-flex;align-items:center;gap:8px;padding:12px 18px;border-radius:999px;" +
      "background:" + settings.color + ";color:" + settings.textColor + ";" +
      "font:600 15px/1.2 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;" +
      "text-decoration:none;box-shadow:0 4px 12px rgba(0,0,0,.2);transition:transform .15s}" +
      "a:hover{transform:translateY(-2px)}a:focus-visible{outline:3px solid #111;outline-offset:3px}" +
      "svg{width:20px;height:20px;flex:none}" +
      "@media print{a{display:none}}";
    var link = document.createElement("a");
    link.href = config.href;
    link.target = "_blank";
    link.rel = "noopener";
    var text = label();
    link.setAttribute("aria-label", text);
    link.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" ' +
      'd="M12 3C7 3 3 6.6 3 11c0 2.2 1 4.2 2.6 5.6L4.8 21l4.5-2c.9.3 1.8.4 2.7.4 5 0 9-3.6' +
      ' 9-8.2S17 3 12 3zm-4 9.4a1.3 1.3 0 1 1 0-2.6 1.3 1.3 0 0 1 0 2.6zm4 0a1.3 1.3 0 1 1 0' +
      '-2.6 1.3 1.3 0 0 1 0 2.6zm4 0a1.3 1.3 0 1 1 0-2.6 1.3 1.3 0 0 1 0 2.6z"/></svg>';
    var span = document.createElement("span");
    span.textContent = text;
    link.appendChild(span);
    root.appendChild(style);
    root.appendChild(link);
    document.body.appendChild(host);

    function update() {
      var visible = rightDevice() && (!settings.hideOutsideHours || openAt(new Date()));
      host.style.display = visible ? "" : "none";
      host.setAttribute("data-open", visible ? "true" : "false");
    }
    update();
    setInterval(update, 60000);
  }

  if (document.body) build();
  else document.addEventListener("DOMContentLoaded", build);
})();
