import { after } from 'node:test';
import { FsHotTail } from '../../cloud/adapters/fs/hot-tail.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { hotTailContract } from './hot-tail.contract.ts';

after(cleanup);
// Small files, so trimming whole files is exercised.
hotTailContract('fs hot tail', (dir) => new FsHotTail(dir, 1000), () => tmpDir('hot'));
