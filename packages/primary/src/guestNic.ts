import type { FlowNic } from './clientFlow.ts';

/** The guest's NIC as the client server and the session manager see it (GuestWorker implements it). */
export interface GuestNic extends FlowNic {
  open(tag: string): void;
  hangUp(tag: string): void;
}
