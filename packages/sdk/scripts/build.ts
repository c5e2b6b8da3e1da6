// Builds the publishable @devart/sdk in packages/sdk/dist: JavaScript and type declarations, with a package.json of its own.
//
// The repository runs the SDK from its .ts sources (tsx, vitest and tsc all resolve "@devart/sdk"
// to src/index.ts), so nothing here runs at install time. What users install is dist/: the SDK
// and the modules it uses from two private workspace packages (@devart/contracts for the task
// message, @devart/queue for the RabbitMQ consumer), compiled by TypeScript into lib/. An import
// of a workspace package is split by the module that declares each name, so only what the SDK
// reaches ships (no management client, no marketplace contracts) and only npm dependencies remain.
//
//   npm run build -w @devart/sdk && npm pack ./packages/sdk/dist
//   npm run build -w @devart/sdk -- /tmp/sdk      (another output folder, as the pack test does)
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

const sdkDir = join(import.meta.dirname, '..');
const packagesDir = join(sdkDir, '..');
const repoRoot = join(packagesDir, '..');
const outDir = resolve(process.argv[2] ?? join(sdkDir, 'dist'));

/** Where each workspace package's sources land in dist; importing any other one fails the build. */
const compiledIn: Record<string, string> = { sdk: 'lib', contracts: 'lib/contracts', queue: 'lib/queue' };

/** The workspace package a source file belongs to, e.g. 'queue'. */
const packageOf = (sourceFile: string) => relative(packagesDir, sourceFile).split(sep)[0];

/** The file a source becomes: packages/queue/src/rabbitmq/broker.ts → dist/lib/queue/rabbitmq/broker.js. */
function outputOf(sourceFile: string, extension: '.js' | '.d.ts'): string {
  const [pkg, src, ...rest] = relative(packagesDir, sourceFile).split(sep);
  const base = pkg === undefined ? undefined : compiledIn[pkg];
  if (!base || src !== 'src' || rest.length === 0) {
    throw new Error(
      `the SDK imports ${relative(repoRoot, sourceFile)}, which is not part of what it ships ` +
        `(packages ${Object.keys(compiledIn).join(', ')}): add it to compiledIn or drop the import`,
    );
  }
  return join(outDir, base, ...rest).replace(/\.ts$/, extension);
}

function relativeSpecifier(fromFile: string, toFile: string): string {
  const path = relative(dirname(fromFile), toFile).split(sep).join('/');
  return path.startsWith('.') ? path : `./${path}`;
}

const tsconfig = ts.readConfigFile(join(repoRoot, 'tsconfig.json'), ts.sys.readFile);
if (tsconfig.error) throw new Error(ts.flattenDiagnosticMessageText(tsconfig.error.messageText, '\n'));
const options: ts.CompilerOptions = {
  // The repository's own settings, so the build checks what `npm run typecheck` does…
  ...ts.convertCompilerOptionsFromJson(tsconfig.config.compilerOptions, repoRoot).options,
  // …except that this program emits, for Node's ESM loader.
  noEmit: false,
  allowImportingTsExtensions: false,
  declaration: true,
  outDir,
  rootDir: packagesDir,
};
// Each package a root: TypeScript emits nothing it reached through node_modules (the workspace links).
const program = ts.createProgram(
  Object.keys(compiledIn).map((pkg) => join(packagesDir, pkg, 'src/index.ts')),
  options,
);
const diagnostics = ts.getPreEmitDiagnostics(program);
if (diagnostics.length > 0) {
  const host = {
    getCanonicalFileName: (f: string) => f,
    getCurrentDirectory: () => repoRoot,
    getNewLine: () => '\n',
  };
  console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, host));
  process.exit(1);
}
const checker = program.getTypeChecker();
const moduleCache = ts.createModuleResolutionCache(repoRoot, (f) => f, options);

type Target = { kind: 'builtin' } | { kind: 'npm'; name: string } | { kind: 'workspace'; file: string };

function resolveImport(specifier: string, containingFile: string): Target {
  if (isBuiltin(specifier)) return { kind: 'builtin' };
  const resolved = ts.resolveModuleName(
    specifier,
    containingFile,
    options,
    ts.sys,
    moduleCache,
  ).resolvedModule;
  if (!resolved) throw new Error(`cannot resolve "${specifier}" from ${relative(repoRoot, containingFile)}`);
  // Workspace packages resolve through their node_modules links to their real paths, under packages/.
  if (resolved.resolvedFileName.startsWith(packagesDir + sep)) {
    return { kind: 'workspace', file: resolved.resolvedFileName };
  }
  const parts = specifier.split('/');
  return { kind: 'npm', name: specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]! };
}

/** What each emitted file imports: other emitted files (to keep only what index reaches) and npm packages. */
const links = new Map<string, { files: Set<string>; npm: Set<string> }>();
const linksOf = (file: string) => {
  const entry = links.get(file) ?? { files: new Set<string>(), npm: new Set<string>() };
  links.set(file, entry);
  return entry;
};

/** The module that declares what `name` (an import or export specifier's name) stands for, and its name there. */
function declarationOf(name: ts.Identifier | ts.StringLiteral): { file: string; exportedAs: string } {
  const symbol = checker.getSymbolAtLocation(name);
  if (!symbol) throw new Error(`no symbol for ${name.text} in ${name.getSourceFile().fileName}`);
  const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  const declaration = target.declarations?.[0];
  if (!declaration) throw new Error(`no declaration for ${name.text}`);
  const file = declaration.getSourceFile();
  const moduleSymbol = checker.getSymbolAtLocation(file);
  const exported = moduleSymbol
    ? checker.getExportsOfModule(moduleSymbol).find((e) => {
        const resolved = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
        return resolved === target;
      })
    : undefined;
  if (!exported)
    throw new Error(`${name.text} is not exported by the module that declares it (${file.fileName})`);
  return { file: file.fileName, exportedAs: exported.name };
}

/**
 * Rewrites the module specifiers of one emitted file (JavaScript or declarations): a workspace
 * module becomes the relative path of its built .js file (declarations resolve `.js` to the
 * `.d.ts` beside it), and a named import or re-export of another workspace package is split into
 * one per declaring module; npm packages and Node built-ins stay as they are.
 */
const rewriteSpecifiers =
  (extension: '.js' | '.d.ts'): ts.TransformerFactory<ts.SourceFile> =>
  (context) =>
  (root) => {
    const { factory } = context;
    const containing = root.fileName;
    const output = outputOf(containing, extension);
    const own = linksOf(output);
    const specifierTo = (file: string) => {
      own.files.add(outputOf(file, extension));
      return factory.createStringLiteral(relativeSpecifier(output, outputOf(file, '.js')));
    };
    /** The specifier for a whole module, or undefined to leave it as it is. */
    const moduleSpecifier = (node: ts.Expression): ts.StringLiteral | undefined => {
      if (!ts.isStringLiteral(node)) return undefined;
      const target = resolveImport(node.text, containing);
      if (target.kind === 'npm') own.npm.add(target.name);
      return target.kind === 'workspace' ? specifierTo(target.file) : undefined;
    };
    /** Named bindings from another workspace package, grouped by the module that declares each. */
    const splitNamed = <S extends ts.ImportSpecifier | ts.ExportSpecifier>(
      specifier: ts.Expression,
      elements: readonly S[],
      rebuild: (element: S, exportedAs: string) => S,
    ): Map<string, S[]> | undefined => {
      if (!ts.isStringLiteral(specifier)) return undefined;
      const target = resolveImport(specifier.text, containing);
      if (target.kind !== 'workspace' || packageOf(target.file) === packageOf(containing)) return undefined;
      const groups = new Map<string, S[]>();
      for (const element of elements) {
        const original = ts.getOriginalNode(element) as S;
        const { file, exportedAs } = declarationOf(original.name);
        const group = groups.get(file) ?? [];
        group.push(rebuild(element, exportedAs));
        groups.set(file, group);
      }
      return groups;
    };
    const propertyFor = (exportedAs: string, local: ts.ModuleExportName) =>
      ts.isIdentifier(local) && local.text === exportedAs ? undefined : factory.createIdentifier(exportedAs);

    const visit = (node: ts.Node): ts.Node | ts.Node[] => {
      if (ts.isImportDeclaration(node)) {
        const clause = node.importClause;
        const named = clause?.namedBindings;
        if (clause && !clause.name && named && ts.isNamedImports(named)) {
          const groups = splitNamed(node.moduleSpecifier, named.elements, (e, exportedAs) =>
            factory.createImportSpecifier(e.isTypeOnly, propertyFor(exportedAs, e.name), e.name),
          );
          if (groups) {
            return [...groups].map(([file, elements]) =>
              factory.createImportDeclaration(
                node.modifiers,
                factory.createImportClause(
                  clause.phaseModifier,
                  undefined,
                  factory.createNamedImports(elements),
                ),
                specifierTo(file),
              ),
            );
          }
        }
        const specifier = moduleSpecifier(node.moduleSpecifier);
        return specifier
          ? factory.updateImportDeclaration(node, node.modifiers, clause, specifier, node.attributes)
          : node;
      }
      if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
        const clause = node.exportClause;
        if (clause && ts.isNamedExports(clause)) {
          const groups = splitNamed(node.moduleSpecifier, clause.elements, (e, exportedAs) =>
            factory.createExportSpecifier(
              e.isTypeOnly,
              propertyFor(exportedAs, e.propertyName ?? e.name),
              e.name,
            ),
          );
          if (groups) {
            return [...groups].map(([file, elements]) =>
              factory.createExportDeclaration(
                node.modifiers,
                node.isTypeOnly,
                factory.createNamedExports(elements),
                specifierTo(file),
              ),
            );
          }
        }
        const specifier = moduleSpecifier(node.moduleSpecifier);
        return specifier
          ? factory.updateExportDeclaration(
              node,
              node.modifiers,
              node.isTypeOnly,
              clause,
              specifier,
              node.attributes,
            )
          : node;
      }
      if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
        const specifier = moduleSpecifier(node.argument.literal as ts.Expression);
        if (specifier) {
          return factory.updateImportTypeNode(
            node,
            factory.updateLiteralTypeNode(node.argument, specifier),
            node.attributes,
            node.qualifier,
            node.typeArguments,
            node.isTypeOf,
          );
        }
      }
      if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const [first, ...others] = node.arguments;
        const specifier = first && moduleSpecifier(first);
        if (specifier)
          return factory.updateCallExpression(node, node.expression, undefined, [specifier, ...others]);
      }
      return ts.visitEachChild(node, visit, context);
    };
    return ts.visitEachChild(root, visit, context);
  };

// Emitted in memory first: only the files the entry points reach are written.
const emittedFiles = new Map<string, string>();
const result = program.emit(
  undefined,
  (fileName, text) => {
    // tsc mirrors packages/<name>/src/…; dist/lib is laid out per compiledIn instead.
    const source = join(packagesDir, relative(outDir, fileName)).replace(/\.(d\.ts|js)$/, '.ts');
    emittedFiles.set(outputOf(source, fileName.endsWith('.d.ts') ? '.d.ts' : '.js'), text);
  },
  undefined,
  false,
  {
    after: [rewriteSpecifiers('.js')],
    // Declarations may come as a bundle (outFile), which this build does not use.
    afterDeclarations: [
      (context) => {
        const rewrite = rewriteSpecifiers('.d.ts')(context);
        return (node) => (ts.isSourceFile(node) ? rewrite(node) : node);
      },
    ],
  },
);
if (result.emitSkipped) throw new Error('TypeScript skipped the emit');

const shipped = new Set<string>();
const npmDependencies = new Set<string>();
const pending = [join(outDir, 'lib/index.js'), join(outDir, 'lib/index.d.ts')];
for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
  if (shipped.has(file)) continue;
  if (!emittedFiles.has(file)) throw new Error(`${relative(repoRoot, file)} was imported but not emitted`);
  shipped.add(file);
  for (const next of links.get(file)?.files ?? []) pending.push(next);
  for (const name of links.get(file)?.npm ?? []) npmDependencies.add(name);
}

// Versions come from the repository's package.json: the ranges its tests run against.
const rootManifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
const source = JSON.parse(readFileSync(join(sdkDir, 'package.json'), 'utf8'));
const versions: Record<string, string> = { ...rootManifest.devDependencies, ...rootManifest.dependencies };
const dependencies = Object.fromEntries(
  [...npmDependencies].sort().map((name) => {
    const version = versions[name];
    if (!version) throw new Error(`the SDK imports "${name}", which the root package.json does not list`);
    return [name, version];
  }),
);
const manifest = {
  name: source.name,
  version: source.version,
  description: source.description,
  license: source.license,
  repository: source.repository,
  keywords: source.keywords,
  engines: source.engines ?? rootManifest.engines,
  type: 'module',
  exports: {
    '.': { types: './lib/index.d.ts', default: './lib/index.js' },
    './package.json': './package.json',
  },
  types: './lib/index.d.ts',
  files: ['lib', 'README.md'],
  sideEffects: false,
  dependencies,
};

rmSync(outDir, { recursive: true, force: true });
for (const file of [...shipped].sort()) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, emittedFiles.get(file)!);
}
writeFileSync(join(outDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
copyFileSync(join(sdkDir, 'README.md'), join(outDir, 'README.md'));
console.log(
  `built ${relative(repoRoot, outDir)}: ${manifest.name}@${manifest.version}, ${shipped.size} files, ` +
    `dependencies ${Object.keys(dependencies).join(', ')}`,
);
