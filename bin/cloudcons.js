#!/usr/bin/env node
// Entry point of the `cloudcons` command. The sources are TypeScript run through tsx's loader,
// so a clean clone needs no build step (`npm ci` is enough).
import { register } from 'tsx/esm/api';
register();
await import('../cli/main.ts');
