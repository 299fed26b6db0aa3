"""The map page's stylesheet and script, inline in every page (nothing is fetched). Selectors are scoped to
`.lk-map`, and the script finds its map as the element just before it, so a page may hold several maps."""

MAP_CSS = """
.lk-map{position:relative}
.lk-meta{color:#555;font-size:12px;margin:2px 0 8px}
.lk-stage{position:relative;border:1px solid #ddd;border-radius:4px;background:#fff}
.lk-map canvas{display:block;width:100%;height:75vh;cursor:crosshair}
.lk-tip{position:absolute;display:none;pointer-events:none;background:#fff;border:1px solid #999;border-radius:4px;
padding:4px;max-width:280px;font-size:11px;box-shadow:0 2px 6px rgba(0,0,0,.25);z-index:2}
.lk-tip img{display:block;max-width:128px;max-height:128px;margin-bottom:2px}
.lk-path{word-break:break-all;font-family:ui-monospace,monospace}
.lk-label{font-weight:600}
.lk-legend{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px}
.lk-legend li{cursor:pointer;user-select:none}
.lk-legend li.off{opacity:.35;text-decoration:line-through}
.lk-swatch{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px;vertical-align:middle}
"""

MAP_JS = """
(function () {
  var root = document.currentScript.previousElementSibling;
  var data = JSON.parse(root.querySelector("script.lk-data").textContent);
  var canvas = root.querySelector("canvas"), ctx = canvas.getContext("2d");
  var tip = root.querySelector(".lk-tip"), tipImg = tip.querySelector("img");
  var tipPath = tip.querySelector(".lk-path"), tipLabel = tip.querySelector(".lk-label");
  var P = data.points, hidden = {}, hover = -1, drag = null, moved = false;
  var view = {s: 1, dx: 0, dy: 0}, base = {k: 1, bx: 0, by: 0};
  var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  P.forEach(function (p) {
    x0 = Math.min(x0, p[0]); x1 = Math.max(x1, p[0]); y0 = Math.min(y0, p[1]); y1 = Math.max(y1, p[1]);
  });
  var radius = Math.max(1.5, Math.min(5, 120 / Math.sqrt(Math.max(P.length, 1))));  // smaller as points get dense
  function fit() {
    var w = canvas.clientWidth, h = canvas.clientHeight, dpr = window.devicePixelRatio || 1, pad = 12;
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    base.k = Math.min((w - 2 * pad) / ((x1 - x0) || 1), (h - 2 * pad) / ((y1 - y0) || 1));
    base.bx = (w - base.k * (x1 + x0)) / 2; base.by = (h + base.k * (y1 + y0)) / 2;
  }
  function sx(p) { return (base.k * p[0] + base.bx) * view.s + view.dx; }
  function sy(p) { return (base.by - base.k * p[1]) * view.s + view.dy; }
  function draw() {
    ctx.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
    ctx.globalAlpha = 0.8;
    for (var i = 0; i < P.length; i++) {
      var p = P[i];
      if (hidden[p[2]]) continue;
      ctx.fillStyle = data.colours[p[2]];
      ctx.beginPath(); ctx.arc(sx(p), sy(p), radius, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (hover >= 0) {
      var q = P[hover];
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(sx(q), sy(q), radius + 3, 0, 2 * Math.PI); ctx.stroke();
    }
  }
  function nearest(mx, my) {
    var best = -1, bestD = 100;
    for (var i = 0; i < P.length; i++) {
      if (hidden[P[i][2]]) continue;
      var dx = sx(P[i]) - mx, dy = sy(P[i]) - my, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }
  function where(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
  function showTip(i, m) {
    if (i < 0) { tip.style.display = "none"; return; }
    var p = P[i];
    tipImg.style.display = p[5] ? "block" : "none";
    if (p[5]) tipImg.src = p[5];
    tipPath.textContent = p[3] || p[4];
    tipLabel.textContent = data.classes[p[2]] + (p[5] ? "" : " (no thumbnail)");
    tip.style.display = "block";
    tipAt = m;
    placeTip();
  }
  var tipAt = [0, 0];
  function placeTip() {  // again once the thumbnail has loaded: the tip is taller then
    var m = tipAt, left = m[0] + 14, top = m[1] + 14;
    if (left + tip.offsetWidth > canvas.clientWidth) left = m[0] - tip.offsetWidth - 14;
    if (top + tip.offsetHeight > canvas.clientHeight) top = m[1] - tip.offsetHeight - 14;
    tip.style.left = Math.max(0, left) + "px"; tip.style.top = Math.max(0, top) + "px";
  }
  tipImg.addEventListener("load", placeTip);
  canvas.addEventListener("mousemove", function (e) {
    var m = where(e);
    if (drag) {
      view.dx = drag[2] + m[0] - drag[0]; view.dy = drag[3] + m[1] - drag[1];
      moved = moved || Math.abs(m[0] - drag[0]) + Math.abs(m[1] - drag[1]) > 3;
      draw(); return;
    }
    var i = nearest(m[0], m[1]);
    if (i !== hover) { hover = i; draw(); }
    showTip(i, m);
  });
  canvas.addEventListener("mouseleave", function () { hover = -1; drag = null; tip.style.display = "none"; draw(); });
  canvas.addEventListener("mousedown", function (e) {
    var m = where(e);
    drag = [m[0], m[1], view.dx, view.dy]; moved = false;
  });
  window.addEventListener("mouseup", function () { drag = null; });
  canvas.addEventListener("click", function (e) {
    if (moved) return;
    var m = where(e), i = nearest(m[0], m[1]);
    if (i >= 0 && P[i][6]) window.open(P[i][6], "_blank", "noopener");
  });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var m = where(e), f = e.deltaY < 0 ? 1.25 : 0.8;
    view.dx = m[0] - (m[0] - view.dx) * f; view.dy = m[1] - (m[1] - view.dy) * f; view.s *= f;
    draw();
  }, {passive: false});
  canvas.addEventListener("dblclick", function () { view = {s: 1, dx: 0, dy: 0}; draw(); });
  root.querySelectorAll(".lk-legend li").forEach(function (li) {
    li.addEventListener("click", function () {
      var i = +li.getAttribute("data-i");
      hidden[i] = !hidden[i]; li.classList.toggle("off", hidden[i]); draw();
    });
  });
  window.addEventListener("resize", function () { fit(); draw(); });
  fit(); draw();
})();
"""
