// Proves that the committed guest images are exactly what packages/common/guests/build.sh makes from the sources on disk: every source has an image, and no image or its source changed since the manifest was written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const guestsDir = fileURLToPath(new URL('../../packages/common/guests/', import.meta.url));

interface ManifestEntry {
  sourceHash: string;
  sha256: string;
  compiler: string;
  inputs: string[];
}

interface Manifest {
  compiler: string;
  images: Record<string, ManifestEntry>;
}

const manifest = JSON.parse(readFileSync(join(guestsDir, 'images/manifest.json'), 'utf8')) as Manifest;

/** Files directly inside `dir` (relative to the guests directory) whose names pass `keep`, sorted. */
function filesIn(dir: string, keep: (name: string) => boolean = () => true): string[] {
  const absolute = join(guestsDir, dir);
  if (!existsSync(absolute)) return [];
  return readdirSync(absolute)
    .filter((name) => keep(name) && statSync(join(absolute, name)).isFile())
    .map((name) => `${dir}/${name}`)
    .sort(compareBytewise);
}

/** Every file under `dir`, at any depth (build.sh's `find net -type f | sort`). */
function filesUnder(dir: string): string[] {
  const absolute = join(guestsDir, dir);
  if (!existsSync(absolute)) return [];
  return readdirSync(absolute, { recursive: true, encoding: 'utf8' })
    .filter((name) => statSync(join(absolute, name)).isFile())
    .map((name) => `${dir}/${name}`)
    .sort(compareBytewise);
}

/** build.sh sorts with LC_ALL=C: by bytes, not by locale. */
function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The image name build.sh gives a source, and the inputs it hashes for it (the same rules). */
function expectedImages(): Map<string, string[]> {
  const images = new Map<string, string[]>();
  const lib = filesIn('lib');
  const include = filesIn('include');
  for (const source of filesIn('src', (name) => name.endsWith('.c'))) {
    const name = source.slice('src/'.length, -'.c'.length);
    images.set(`${name}.elf`, ['build.sh', ...lib, ...include, source].sort(compareBytewise));
    // The same guest built for rv32imac (compressed and atomic instructions), from the same inputs.
    images.set(`${name}.rv32imac.elf`, ['build.sh', ...lib, ...include, source].sort(compareBytewise));
  }
  // Network guests: also net/ (lwIP's port, and net/lwip.version: the lwIP they were built with).
  const net = filesUnder('net');
  for (const source of filesIn('netsrc', (name) => name.endsWith('.c'))) {
    const name = source.slice('netsrc/'.length, -'.c'.length);
    images.set(`${name}.elf`, ['build.sh', ...lib, ...include, ...net, source].sort(compareBytewise));
  }
  const isaShared = [
    ...filesIn('isa', (name) => name === 'link.ld'),
    ...filesIn('isa', (name) => name.endsWith('.h')),
    ...filesIn('isa', (name) => name === 'crt.S'),
  ];
  const isaSources = filesIn('isa', (name) => (name.endsWith('.S') && name !== 'crt.S') || name.endsWith('.c'));
  for (const source of isaSources) {
    const name = source.slice('isa/'.length).replace(/\.(S|c)$/, '');
    images.set(`isa/${name}.elf`, ['build.sh', ...include, ...isaShared, source].sort(compareBytewise));
  }
  return images;
}

/** sourceHash: the sha256 of what `sha256sum INPUTS...` prints, as build.sh computes it. */
function sourceHash(inputs: string[]): string {
  const listing = inputs.map((path) => `${sha256Hex(readFileSync(join(guestsDir, path)))}  ${path}\n`).join('');
  return sha256Hex(listing);
}

const expected = expectedImages();

test('every guest and ISA test source has an image in the manifest, and nothing else does', () => {
  assert.ok(expected.size > 0, 'no guest sources found');
  assert.deepEqual(
    Object.keys(manifest.images).sort(compareBytewise),
    [...expected.keys()].sort(compareBytewise),
    'manifest.json does not list exactly the images of the sources on disk: run packages/common/guests/build.sh',
  );
});

test('each image was built from the sources on disk (sourceHash)', () => {
  for (const [image, inputs] of expected) {
    const entry = manifest.images[image];
    if (entry === undefined) continue; // reported by the test above
    assert.deepEqual(entry.inputs, inputs, `${image}: the manifest's inputs differ from build.sh's rules`);
    assert.equal(
      entry.sourceHash,
      sourceHash(inputs),
      `${image} is stale: its sources changed since it was built; run packages/common/guests/build.sh`,
    );
  }
});

test('each image file is the one the manifest records (sha256)', () => {
  for (const [image, entry] of Object.entries(manifest.images)) {
    const path = join(guestsDir, 'images', image);
    assert.ok(existsSync(path), `${image} is in the manifest but images/${image} is missing`);
    assert.equal(sha256Hex(readFileSync(path)), entry.sha256, `images/${image} does not match its manifest entry`);
    assert.equal(entry.compiler, manifest.compiler, `${image} was built with another compiler than the rest`);
  }
});

test("network guests are built with the lwIP that net/lwip.version names, from Debian's source package", () => {
  const version = readFileSync(join(guestsDir, 'net/lwip.version'), 'utf8');
  assert.match(version, /^package=lwip$/m);
  assert.match(version, /^version=2\.1\.\d+\S*$/m, 'lwIP 2.1.x');
  assert.match(version, /^orig_sha256=[0-9a-f]{64}$/m);
  const networkImages = filesIn('netsrc', (name) => name.endsWith('.c')).map(
    (source) => `${source.slice('netsrc/'.length, -'.c'.length)}.elf`,
  );
  assert.ok(networkImages.includes('kvnet.elf'));
  for (const image of networkImages) {
    assert.ok(manifest.images[image]?.inputs.includes('net/lwip.version'), `${image}'s sourceHash covers net/lwip.version`);
  }
});

test('every image is a 32-bit little-endian RISC-V executable', () => {
  for (const image of Object.keys(manifest.images)) {
    const header = readFileSync(join(guestsDir, 'images', image)).subarray(0, 20);
    assert.deepEqual([...header.subarray(0, 6)], [0x7f, 0x45, 0x4c, 0x46, 1, 1], `${image}: not an ELF32 LSB file`);
    assert.equal(header.readUInt16LE(16), 2, `${image}: not an executable (ET_EXEC)`);
    assert.equal(header.readUInt16LE(18), 243, `${image}: not RISC-V (EM_RISCV)`);
  }
});
