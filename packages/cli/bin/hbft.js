#!/usr/bin/env node
// The `hbft` command. The sources are TypeScript run directly through tsx's loader,
// so an install needs no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
await main(process.argv.slice(2));
