/*
 * Prometheus metrics of one cloud (prom-client), served on the ops listener's
 * /metrics (cloud/ops-listener.ts).
 *
 * Each cloud has its own CloudMetrics (its own prom-client Registry: tests run
 * many clouds in one process). Components get it from startCloud and either
 * count events as they happen (counter/histogram) or report a value when
 * scraped (gauge with a collect function). Any module may add its own metric:
 *
 *   metrics.gauge("wcm_radius_nas_sessions", "live hotspot sessions per NAS", ["nas"],
 *     (g) => { for (const [nas, n] of sessions) g.set({ nas }, n); });
 *   metrics.counter("wcm_busy_answers_total", "connections answered CONNACK 3").inc();
 *
 * counter/gauge/histogram return the existing metric when the name is taken,
 * so a module may ask again. Names are `wcm_*` (and the default `process_*`,
 * `nodejs_*`, among them nodejs_eventloop_lag_seconds). No label carries a
 * device id, a secret or anything a device sends: label values are reasons,
 * outcomes and listener names from fixed sets.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Seconds buckets of the login and query latency histograms. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The metrics registry of one cloud. */
export class CloudMetrics {
  /** the prom-client registry (for `registry.metrics()` or merging) */
  readonly registry = new Registry();

  /** @param options.process - also the default process and Node metrics (event-loop lag, heap, CPU); on for a served cloud */
  constructor(options: { process?: boolean } = {}) {
    if (options.process) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
  }

  /** A counter (made once per name). */
  counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter<string>;
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** A gauge; `collect` (optional) sets its values at each scrape. */
  gauge(name: string, help: string, labelNames: string[] = [], collect?: (gauge: Gauge<string>) => void | Promise<void>): Gauge<string> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Gauge<string>;
    return new Gauge({
      name, help, labelNames, registers: [this.registry],
      ...(collect ? { async collect(this: Gauge<string>) { await collect(this); } } : {}),
    });
  }

  /** A histogram (seconds, LATENCY_BUCKETS unless given). */
  histogram(name: string, help: string, labelNames: string[] = [], buckets = LATENCY_BUCKETS): Histogram<string> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram<string>;
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** A counter whose values are read from a component's stats at each scrape (the stats only grow). */
export function countFromStats(metrics: CloudMetrics, name: string, help: string, labelNames: string[], read: () => [Record<string, string>, number][]): Counter<string> {
  const existing = metrics.registry.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({
    name, help, labelNames, registers: [metrics.registry],
    collect(this: Counter<string>) {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}
