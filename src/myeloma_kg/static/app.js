// The query page of `myeloma-kg serve`: sends the query with the SPARQL 1.1 Protocol
// (POST application/sparql-query) and shows the answer. Everything is built with DOM text
// nodes, never innerHTML, so data from the graph cannot inject markup.
"use strict";

const PREFIXES = `PREFIX mkg: <https://w3id.org/myeloma-kg/>
PREFIX res: <https://w3id.org/myeloma-kg/result/>
PREFIX reg: <https://w3id.org/myeloma-kg/regimen/>
PREFIX drug: <https://w3id.org/myeloma-kg/drug/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
`;

const EXAMPLES = [
  ["Guideline recommendations", PREFIXES + `SELECT ?rec ?rule ?option ?strength WHERE {
  ?rec a mkg:Recommendation ; mkg:ruleId ?rule ; mkg:recommends ?option ; mkg:strength ?strength .
} ORDER BY ?rule LIMIT 50`],
  ["Patient graphs", `SELECT ?g (COUNT(*) AS ?triples) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g`],
  ["Options offered to each loaded patient", PREFIXES + `SELECT ?patient ?position ?regimen ?strength WHERE {
  GRAPH ?g { ?patient res:recommendation ?r . ?r res:option ?o .
             ?o res:position ?position ; res:regimen ?regimen ; res:strength ?strength . }
} ORDER BY ?patient ?position`],
  ["Drugs and their classes", PREFIXES + `SELECT ?drug ?label ?class WHERE {
  ?drug a mkg:Drug ; rdfs:label ?label ; a ?class .
  ?class rdfs:subClassOf mkg:Drug . FILTER(?class != mkg:Drug)
} ORDER BY ?label LIMIT 100`],
  ["Describe a regimen (Turtle)", PREFIXES + `DESCRIBE reg:dvd`],
];

const $ = (id) => document.getElementById(id);

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

function termText(term) {
  if (!term) return "";
  if (term.type === "uri") return term.value;
  if (term.type === "bnode") return "_:" + term.value;
  let text = term.value;
  if (term["xml:lang"]) text += "@" + term["xml:lang"];
  return text;
}

function renderJson(data, target) {
  if (typeof data.boolean === "boolean") {
    const p = document.createElement("p");
    p.className = "boolean";
    p.textContent = "ASK: " + data.boolean;
    target.appendChild(p);
    return;
  }
  const vars = data.head.vars;
  const rows = data.results.bindings;
  const count = document.createElement("p");
  count.textContent = rows.length + " result" + (rows.length === 1 ? "" : "s");
  target.appendChild(count);
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const v of vars) {
    const th = document.createElement("th");
    th.textContent = "?" + v;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const v of vars) {
      const td = tr.insertCell();
      td.textContent = termText(row[v]);
      if (row[v]) td.title = row[v].type + (row[v].datatype ? " " + row[v].datatype : "");
    }
  }
  target.appendChild(table);
}

async function runQuery(event) {
  event.preventDefault();
  const results = $("results");
  clear(results);
  const accept = $("format").value;
  const params = new URLSearchParams();
  for (const line of $("graphs").value.split("\n")) {
    if (line.trim()) params.append("default-graph-uri", line.trim());
  }
  const url = "/sparql" + (params.toString() ? "?" + params.toString() : "");
  setStatus("running…", false);
  const started = performance.now();
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/sparql-query", "Accept": accept + ", */*;q=0.1" },
      body: $("query").value,
    });
    const text = await response.text();
    const ms = Math.round(performance.now() - started);
    if (!response.ok) {
      setStatus("HTTP " + response.status + " (" + ms + " ms)", true);
      const pre = document.createElement("pre");
      pre.className = "error";
      pre.textContent = text;
      results.appendChild(pre);
      return;
    }
    setStatus("HTTP " + response.status + " in " + ms + " ms", false);
    const type = (response.headers.get("Content-Type") || "").split(";")[0];
    if (type === "application/sparql-results+json") {
      renderJson(JSON.parse(text), results);
    } else {
      const pre = document.createElement("pre");
      pre.textContent = text;
      results.appendChild(pre);
    }
  } catch (err) {
    setStatus("request failed: " + err, true);
  }
}

function init() {
  const select = $("examples");
  EXAMPLES.forEach(([name], i) => {
    const option = document.createElement("option");
    option.value = String(i);
    option.textContent = name;
    select.appendChild(option);
  });
  select.addEventListener("change", () => {
    const [, query] = EXAMPLES[Number(select.value)];
    $("query").value = query;
    $("format").value = /^\s*(PREFIX[^\n]*\n\s*)*(DESCRIBE|CONSTRUCT)/i.test(query)
      ? "text/turtle" : "application/sparql-results+json";
  });
  $("query").value = EXAMPLES[0][1];
  $("query-form").addEventListener("submit", runQuery);
  // A shared link: /?query=...&default-graph-uri=... fills the form and runs the query.
  const params = new URLSearchParams(window.location.search);
  if (params.has("query")) {
    $("query").value = params.get("query");
    $("graphs").value = params.getAll("default-graph-uri").join("\n");
    if (params.has("accept")) $("format").value = params.get("accept");
    $("query-form").requestSubmit();
  }
  $("query").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runQuery(e);
  });
}

init();
