import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, statSync } from "node:fs";
import ts from "typescript";
const file = process.argv[2];
const js = ts.transpileModule(readFileSync(file, "utf8"), { compilerOptions: { target: ts.ScriptTarget.ES2024 + 1 as ts.ScriptTarget, module: ts.ModuleKind.Preserve } }).outputText;
function size(src: string) { writeFileSync("/tmp/h12/p.js", src); const r = spawnSync("xsc", ["/tmp/h12/p.js", "-c", "-e", "-o", "/tmp/h12", "-r", "p"], { encoding: "utf8" }); if (r.status) return NaN; return statSync("/tmp/h12/p.xsb").size; }
const base = size(js);
const sf = ts.createSourceFile("a.js", js, ts.ScriptTarget.Latest, true);
const rows: [string, number][] = [];
const bodies = (n: ts.Node, prefix: string) => {
  for (const st of (n as any).statements ?? (n as any).members ?? []) {
    let name = "", body: ts.Node | undefined;
    if (ts.isFunctionDeclaration(st) || ts.isMethodDeclaration(st) || ts.isConstructorDeclaration(st) || ts.isGetAccessor(st) || ts.isSetAccessor(st)) { name = (st.name?.getText() ?? "ctor"); body = st.body; }
    else if (ts.isClassDeclaration(st)) { bodies(st, (st.name?.getText() ?? "") + "."); continue; }
    else if (ts.isVariableStatement(st)) { const d = st.declarationList.declarations[0]; name = d.name.getText(); body = d.initializer; if (body && (ts.isArrowFunction(body)||ts.isFunctionExpression(body))) body = (body as any).body; }
    if (!body) continue;
    const rep = ts.isBlock(body) ? "{}" : (ts.isVariableStatement(st) ? "0" : "{}");
    const s = size(js.slice(0, body.getStart()) + rep + js.slice(body.end));
    rows.push([prefix + name, base - s]);
  }
};
bodies(sf, "");
rows.sort((a, b) => b[1] - a[1]);
console.log(file, base);
for (const [n, d] of rows) console.log("  ", String(d).padStart(5), n);
