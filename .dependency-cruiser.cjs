// The layers of hbft, top to bottom (style.md, "Layers"): an import only points down. `npm test`
// runs dependency-cruiser with these rules, so the README's layout table cannot drift from the code.
// Each file belongs to exactly one layer (the patterns do not overlap).
const C = '^packages/common/src/';
const layers = [
  { name: 'cli and benchmarks', path: '^packages/cli/|' + `${C}bench/` },
  { name: 'node supervisor', path: '^packages/backup/src/daemon\\.ts$' },
  {
    name: 'primary and backup drivers',
    path: '^packages/primary/src/(?!replicator\\.ts$)|^packages/backup/src/(?!daemon\\.ts$|backupReplicator\\.ts$|replicaStore\\.ts$)',
  },
  { name: 'role state machines', path: '^packages/primary/src/replicator\\.ts$|^packages/backup/src/(backupReplicator|replicaStore)\\.ts$' },
  { name: 'transport, protocol, http, sessions, chaos', path: `${C}(transport|protocol|http|session|chaos)/` },
  { name: 'hypervisor', path: `${C}hypervisor/` },
  { name: 'checkpoint and tracking', path: `${C}(checkpoint|tracking)/` },
  { name: 'guest machine', path: `${C}guest/` },
  { name: 'shared basics', path: `${C}[^/]+\\.ts$` },
];

const forbidden = [
  {
    name: 'no-circular',
    severity: 'error',
    comment: 'An import cycle makes two modules one; move what they share into a lower module.',
    from: {},
    to: { circular: true },
  },
  {
    name: 'not-to-unresolvable',
    severity: 'error',
    comment: 'An import that resolves to nothing fails at run time.',
    from: {},
    to: { couldNotResolve: true },
  },
  {
    name: 'no-orphans',
    severity: 'error',
    comment: 'A module nothing imports is dead code (entry points and tests excepted).',
    from: { orphan: true, pathNot: ['^test/', '^scripts/', '\\.d\\.ts$', '^packages/cli/bin/', 'Main\\.ts$'] },
    to: {},
  },
];
for (let lower = 1; lower < layers.length; lower++) {
  for (let upper = 0; upper < lower; upper++) {
    forbidden.push({
      name: `layers: ${layers[lower].name} -> ${layers[upper].name}`,
      severity: 'error',
      comment: `${layers[lower].name} sits below ${layers[upper].name}: imports point down only.`,
      from: { path: layers[lower].path },
      to: { path: layers[upper].path },
    });
  }
}

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['node_modules', '^packages/common/guests/'] },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'node', 'default'] },
  },
};
