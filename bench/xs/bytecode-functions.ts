/*
 * Where a module's release XS bytecode goes: for each top-level function, class
 * member and constant, how many bytes the module loses when that body is emptied
 * (tsc as bench/xs/bytecode.ts, then `xsc -c -e`), and the module's split into
 * symbols (SYMB: every identifier and property name, once per module), code
 * (CODE) and string literals (the bytes saved when every literal is emptied;
 * XS stores a literal inline at each use).
 * Needs xsc on PATH (PATH=$MODDABLE/build/bin/lin/release:$PATH).
 * Usage: tsx bench/xs/bytecode-functions.ts modules/machine.ts [more files]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";

const dir = mkdtempSync(join(tmpdir(), "wcm-xsb-fn-"));

/** Release bytecode of `js`: total bytes and the SYMB and CODE chunks; undefined when xsc refuses it. */
function compile(js: string): { total: number; symbols: number; code: number } | undefined {
  writeFileSync(join(dir, "m.js"), js);
  const run = spawnSync("xsc", [join(dir, "m.js"), "-c", "-e", "-o", dir, "-r", "m"], { encoding: "utf8" });
  if (run.status !== 0) return undefined;
  const xsb = readFileSync(join(dir, "m.xsb"));
  const chunks: Record<string, number> = {};
  for (let at = 8; at < xsb.length; at += xsb.readUInt32BE(at)) chunks[xsb.toString("latin1", at + 4, at + 8)] = xsb.readUInt32BE(at) - 8;
  return { total: xsb.length, symbols: chunks.SYMB ?? 0, code: chunks.CODE ?? 0 };
}

function replace(js: string, edits: [number, number, string][]): string {
  for (const [start, end, text] of edits.sort((a, b) => b[0] - a[0])) js = js.slice(0, start) + text + js.slice(end);
  return js;
}

/** Every string literal and template text emptied (import specifiers and property keys kept). */
function withoutStrings(js: string): string {
  const file = ts.createSourceFile("m.js", js, ts.ScriptTarget.Latest, true);
  const edits: [number, number, string][] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && !ts.isImportDeclaration(node.parent) && !ts.isExportDeclaration(node.parent) && !ts.isPropertyAssignment(node.parent)) {
      edits.push([node.getStart(), node.end, '""']);
    } else if (ts.isTemplateExpression(node)) {
      edits.push([node.head.getStart(), node.head.end, "`${"]);
      for (const span of node.templateSpans) edits.push([span.literal.getStart(), span.literal.end, ts.isTemplateTail(span.literal) ? "}`" : "}${"]);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return replace(js, edits);
}

/** [name, bytes the module loses without its body] for each top-level declaration and class member. */
function perDeclaration(js: string, total: number): [string, number][] {
  const file = ts.createSourceFile("m.js", js, ts.ScriptTarget.Latest, true);
  const rows: [string, number][] = [];
  const walk = (statements: readonly ts.Node[], prefix: string): void => {
    for (const node of statements) {
      let name = "";
      let body: ts.Node | undefined;
      if (ts.isClassDeclaration(node)) {
        walk(node.members, `${node.name?.text ?? "class"}.`);
        continue;
      }
      if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) {
        name = node.name?.getText() ?? "function";
        body = node.body;
      } else if (ts.isConstructorDeclaration(node)) {
        name = "constructor";
        body = node.body;
      } else if (ts.isVariableStatement(node)) {
        const declaration = node.declarationList.declarations[0];
        name = declaration.name.getText();
        body = declaration.initializer;
        if (body && (ts.isArrowFunction(body) || ts.isFunctionExpression(body))) body = body.body;
      }
      if (!body) continue;
      const emptied = compile(replace(js, [[body.getStart(), body.end, ts.isBlock(body) ? "{}" : "0"]]));
      if (emptied) rows.push([prefix + name, total - emptied.total]);
    }
  };
  walk(file.statements, "");
  return rows.sort((a, b) => b[1] - a[1]);
}

try {
  for (const path of process.argv.slice(2)) {
    const js = ts.transpileModule(readFileSync(path, "utf8"), {
      compilerOptions: { target: ts.ScriptTarget.ES2024 + 1 as ts.ScriptTarget, module: ts.ModuleKind.Preserve, verbatimModuleSyntax: false },
    }).outputText;
    const whole = compile(js);
    if (!whole) throw new Error(`xsc refused ${path} (is xsc on PATH?)`);
    const strings = whole.total - (compile(withoutStrings(js))?.total ?? whole.total);
    console.log(`${path}: ${whole.total} B (symbols ${whole.symbols}, code ${whole.code}, of which string literals ${strings})`);
    for (const [name, bytes] of perDeclaration(js, whole.total)) console.log(`  ${String(bytes).padStart(6)}  ${name}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
