export { Cluster, freePorts, type ClusterOptions, type Node } from '@hbft/cli/cluster.ts';
