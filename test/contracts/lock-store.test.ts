import { MemoryLockStore } from '../../cloud/adapters/memory/lock-store.ts';
import { lockStoreContract } from './lock-store.contract.ts';

lockStoreContract('memory lock store', async () => new MemoryLockStore());
