// The page's router: #/ runs, #/charts?runs=a,b, #/run/<id>, #/compare?runs=a,b, #/trash.
// Each view renders into <main> and returns a stop() that ends its polling.

import { el, clear, routeParams } from "./util.js";
import { showRuns } from "./runs.js";
import { showCharts } from "./charts.js";
import { showRun } from "./run.js";
import { showCompare } from "./compare.js";
import { showTrash } from "./trash.js";

const main = document.getElementById("main");
let stopView = () => {};

export function setLive(on) {
  document.getElementById("live").hidden = !on;
}

function route() {
  stopView();
  setLive(false);
  clear(main);
  const { path, params } = routeParams(location.hash);
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.route === path || (path.startsWith("/run/") && link.dataset.route === "/"));
  }
  let view;
  if (path === "/" || path === "") view = showRuns(main, params);
  else if (path === "/charts") view = showCharts(main, params);
  else if (path === "/compare") view = showCompare(main, params);
  else if (path === "/trash") view = showTrash(main);
  else if (path.startsWith("/run/")) view = showRun(main, decodeURIComponent(path.slice(5)));
  else main.append(el("p", { class: "error" }, "No such page."));
  stopView = typeof view === "function" ? view : () => {};
}

window.addEventListener("hashchange", route);
route();
