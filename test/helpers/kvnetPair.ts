import { Lan } from './lan.ts';
import { Pair, type PairOptions } from './pair.ts';

/**
 * The kvnet guest protected by a Pair whose daemons run in a Lan's namespace, each on its own TAP,
 * with the replication link through the Pair's chaos proxies in this process (reached over the
 * Lan's link to the host). Clients reach the guest at `lan.guestIp:6379` from inside the namespace
 * (test/helpers/plainLoad.ts runs `hbft load` there). `subnet` is the third octet that keeps this
 * file's addresses apart from other files' (10.77.SUBNET.0/24 for the LAN, 10.78.SUBNET.0/30 for the
 * link to the host).
 */
export async function startKvnetPair(
  name: string,
  subnet: number,
  options: Omit<PairOptions, 'guest' | 'siteArgs' | 'daemonHost' | 'proxyHost' | 'launch'> = {},
): Promise<{ lan: Lan; pair: Pair }> {
  const lan = await Lan.create(name, `10.77.${subnet}`, ['a', 'b']);
  try {
    const link = await lan.linkToHost(`10.78.${subnet}`);
    const pair = await Pair.start({ ...lan.kvnetPairOptions(link, options.memory), ...options });
    return { lan, pair };
  } catch (error) {
    await lan.destroy();
    throw error;
  }
}
