export { Cluster, freePorts, type ClusterOptions } from '@hbft/cli/cluster.ts';
