"""The fleet page's style and scripts: Airflow's look in its light and dark themes, sorting and filtering.

The Airflow 3.3 UI shows a plugin's page in a same-origin iframe (sandbox ``allow-scripts allow-same-origin``)
and keeps its colour mode the way next-themes does: the class ``light`` or ``dark`` on its ``<html>``, the
choice (``light``, ``dark`` or ``system``) in ``localStorage["theme"]``. :data:`THEME_SCRIPT` takes the mode
from the parent page when it can read it, else from that key, else from ``prefers-color-scheme``, and follows
each change (the parent's class, the key from another tab, the system's scheme). Embedded, it also copies the
parent's Chakra colour variables (a deployment's own ``[api] theme`` included); opened alone, the page uses
:data:`STYLE`'s copy of Airflow's default palette. :data:`TABLE_SCRIPT` sorts by a column (each cell's
``data-sort``) and filters rows by their ``data-template``, ``data-decision`` and ``data-drift``.

The sandbox has no ``allow-top-navigation`` nor ``allow-popups``: a ``target="_top"`` or ``"_blank"`` link clicked
in the frame does nothing. Embedded, :data:`LINK_SCRIPT` therefore moves the UI itself: an Airflow link is pushed
on the parent's history and announced with a ``popstate`` (the UI's router draws the page, as after its own
links), and an outside link (MLflow) is clicked as a link of the parent's document, which opens its tab.
"""

from __future__ import annotations

import json

#: Our CSS variable → the Airflow UI's Chakra variable it copies when the page is embedded.
PARENT_TOKENS = {
    "--bg": "--chakra-colors-bg",
    "--bg-subtle": "--chakra-colors-bg-subtle",
    "--bg-muted": "--chakra-colors-bg-muted",
    "--fg": "--chakra-colors-fg",
    "--fg-muted": "--chakra-colors-fg-muted",
    "--border": "--chakra-colors-border",
    "--link": "--chakra-colors-fg-info",
    "--ok-bg": "--chakra-colors-success-subtle",
    "--ok-fg": "--chakra-colors-success-fg",
    "--bad-bg": "--chakra-colors-failed-subtle",
    "--bad-fg": "--chakra-colors-failed-fg",
    "--warn-bg": "--chakra-colors-warning-subtle",
    "--warn-fg": "--chakra-colors-warning-fg",
    "--font": "--chakra-fonts-body",
}

# Airflow 3.3's default tokens (its Chakra theme): bg, fg, border... in light, then dark.
STYLE = """
:root{color-scheme:light;--bg:#fff;--bg-subtle:oklch(.985 .004 253);--bg-muted:oklch(.955 .006 253);
--fg:oklch(.23185 .0323 266.44);--fg-muted:oklch(.45 .055 251);--border:oklch(.915 .01 253);
--link:oklch(.469 .084 257.657);--ok-bg:oklch(.962 .044 156.743);--ok-fg:oklch(.448 .119 151.328);
--bad-bg:oklch(.936 .032 17.717);--bad-fg:oklch(.444 .177 26.899);--warn-bg:oklch(.962 .059 95.617);
--warn-fg:oklch(.473 .137 46.201);--idle-bg:var(--bg-muted);--idle-fg:var(--fg-muted);
--trend-holdout:oklch(.469 .084 257.657);--trend-live:oklch(.666 .179 58.318);
--font:Inter,ui-sans-serif,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
:root.dark{color-scheme:dark;--bg:oklch(.23185 .0323 266.44);--bg-subtle:oklch(.11 .025 251);
--bg-muted:oklch(.18 .03 251);--fg:oklch(.985 .004 253);--fg-muted:oklch(.75 .025 252);
--border:oklch(.28 .035 251);--link:oklch(.865 .039 252.42);--ok-bg:oklch(.393 .095 152.535);
--ok-fg:oklch(.925 .084 155.995);--bad-bg:oklch(.396 .141 25.723);--bad-fg:oklch(.885 .062 18.334);
--warn-bg:oklch(.414 .112 45.904);--warn-fg:oklch(.924 .12 95.746);--trend-holdout:oklch(.865 .039 252.42);
--trend-live:oklch(.828 .189 84.429)}
html,body{background:var(--bg);color:var(--fg)}
body{font-family:var(--font);font-size:14px;margin:0;padding:1rem 1.25rem}
h1{font-size:1.5rem;font-weight:600;margin:0 0 .25rem}a{color:var(--link)}
#fleet-summary,.reason{color:var(--fg-muted)}.reason{font-size:.85em;max-width:28rem}
#fleet-counts{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0;margin:.75rem 0}
#fleet-counts li{border:1px solid var(--border);border-radius:.375rem;padding:.4rem .75rem;background:var(--bg-subtle)}
#fleet-counts .count{display:block;font-size:1.25rem;font-weight:600}
#fleet-filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin:.5rem 0 .75rem}
select{background:var(--bg);color:var(--fg);border:1px solid var(--border);border-radius:.375rem;padding:.2rem .4rem;
font:inherit}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid var(--border);padding:.4rem .6rem;
text-align:left;vertical-align:top}th{background:var(--bg-muted);font-weight:600}
th button{all:unset;cursor:pointer}th button:focus-visible{outline:2px solid var(--link)}
th[aria-sort=ascending] button::after{content:" ▲"}th[aria-sort=descending] button::after{content:" ▼"}
.badge{border-radius:1em;padding:0 .5em;font-weight:600;font-size:.85em}.ok{background:var(--ok-bg);color:var(--ok-fg)}
.bad{background:var(--bad-bg);color:var(--bad-fg)}.warn{background:var(--warn-bg);color:var(--warn-fg)}
.idle{background:var(--idle-bg);color:var(--idle-fg)}.registry-error td.champion{color:var(--bad-fg)}
svg.trend{display:block;overflow:visible}polyline{fill:none;stroke-width:1.5;stroke-linejoin:round}
polyline.trend-holdout{stroke:var(--trend-holdout)}polyline.trend-live{stroke:var(--trend-live);stroke-dasharray:3 2}
circle.trend-holdout{fill:var(--trend-holdout)}circle.trend-live{fill:var(--trend-live)}
.legend-holdout{color:var(--trend-holdout)}.legend-live{color:var(--trend-live)}
"""

# In <head>, before the body paints: no flash of the other theme.
_THEME_SCRIPT = """
(function(){
var root=document.documentElement,KEY="theme",TOKENS=__TOKENS__,media=matchMedia("(prefers-color-scheme: dark)");
function parentRoot(){
try{return window.parent!==window?window.parent.document.documentElement:null}catch(e){return null}}
function mode(p){
if(p&&p.classList.contains("dark"))return "dark";if(p&&p.classList.contains("light"))return "light";
var chosen=null;try{chosen=localStorage.getItem(KEY)}catch(e){}
if(chosen==="dark"||chosen==="light")return chosen;return media.matches?"dark":"light"}
function apply(){var p=parentRoot(),m=mode(p),style=p?getComputedStyle(p):null;
root.classList.remove("light","dark");root.classList.add(m);root.setAttribute("data-theme",m);
for(var k in TOKENS){var v=style?style.getPropertyValue(TOKENS[k]).trim():"";
if(v)root.style.setProperty(k,v);else root.style.removeProperty(k)}}
apply();window.addEventListener("storage",function(e){if(e.key===KEY)apply()});
media.addEventListener("change",apply);
var p=parentRoot();if(p)new MutationObserver(apply).observe(p,{attributes:true,attributeFilter:["class","style"]});
})();
"""

THEME_SCRIPT = _THEME_SCRIPT.replace("__TOKENS__", json.dumps(PARENT_TOKENS))

TABLE_SCRIPT = """
(function(){
var table=document.getElementById("fleet-table");if(!table)return;
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows),shown=document.getElementById("fleet-shown");
var filters=Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
function filter(){var n=0;rows.forEach(function(r){
var keep=filters.every(function(f){return !f.value||r.getAttribute("data-"+f.getAttribute("data-filter"))===f.value});
r.hidden=!keep;if(keep)n++});shown.textContent=n+" of "+rows.length+" shown"}
filters.forEach(function(f){f.addEventListener("change",filter)});
function key(r,column){var c=r.querySelector("td."+column);return c?c.getAttribute("data-sort")||"":""}
table.querySelectorAll("th button[data-sort]").forEach(function(b){b.addEventListener("click",function(){
var th=b.parentNode,dir=th.getAttribute("aria-sort")==="ascending"?"descending":"ascending",sign=dir==="ascending"?1:-1;
table.querySelectorAll("th[aria-sort]").forEach(function(t){t.removeAttribute("aria-sort")});
th.setAttribute("aria-sort",dir);var column=b.getAttribute("data-sort");
rows.sort(function(x,y){var a=key(x,column),c=key(y,column);if(a===c)return 0;if(a==="")return 1;if(c==="")return -1;
var na=Number(a),nc=Number(c);return sign*(isNaN(na)||isNaN(nc)?a.localeCompare(c):na-nc)});
rows.forEach(function(r){body.appendChild(r)})})});
filter();
})();
"""

LINK_SCRIPT = """
(function(){
var top=null;try{if(window.parent!==window&&window.parent.location.origin===location.origin)top=window.parent}catch(e){}
if(!top)return;
document.addEventListener("click",function(e){
if(e.defaultPrevented||e.button!==0||e.metaKey||e.ctrlKey||e.shiftKey||e.altKey)return;
var a=e.target.closest?e.target.closest("a[href][target]"):null;if(!a)return;
var target=a.getAttribute("target"),url=new URL(a.href,location.href);
if(target==="_top"&&url.origin===location.origin){e.preventDefault();
var state=top.history.state||{},idx=typeof state.idx==="number"?state.idx+1:0;
top.history.pushState({usr:null,key:Math.random().toString(36).slice(2,10),idx:idx},"",url.pathname+url.search+url.hash);
top.dispatchEvent(new top.PopStateEvent("popstate",{state:top.history.state}))}
else if(target==="_blank"){e.preventDefault();var d=top.document,link=d.createElement("a");
link.href=url.href;link.target="_blank";link.rel="noopener noreferrer";link.style.display="none";
d.body.appendChild(link);link.click();link.remove()}});
})();
"""
