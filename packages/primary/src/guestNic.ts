/** The guest's NIC as the client server and the session manager see it (GuestWorker implements it). */
export interface GuestNic {
  open(tag: string): void;
  deliver(tag: string, bytes: Uint8Array): void;
  hangUp(tag: string): void;
}
