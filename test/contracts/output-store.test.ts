import { after } from 'node:test';
import { FsOutputStore } from '../../cloud/adapters/fs/output-store.ts';
import { cleanup } from '../helpers.ts';
import { outputStoreContract } from './output-store.contract.ts';

after(cleanup);
outputStoreContract('fs output store', (dir) => new FsOutputStore(dir));
