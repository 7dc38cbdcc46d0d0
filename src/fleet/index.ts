/**
 * Fleets on NATS JetStream: agents that join guests to a fleet, releases rolled out ring by ring
 * by a stateless controller behind health gates, compliance reports, per-role credentials.
 */
export { Agent, type AgentOptions } from './agent.js';
export type { FleetGuest } from './guest.js';
export { connectNats, createFleet, openFleet, joinFleet, type FleetConnection, type FleetConnectOptions, type FleetLayout } from './connection.js';
export { createRelease, publishPatch, listReleases, getRelease, updateRelease, type ReleaseOptions } from './release.js';
export { Controller, controllerStep, ringDesires, type ControllerOptions, type StepResult } from './controller.js';
export { operate, type OperatorAction } from './operator.js';
export { readGate, type GateReading } from './gate.js';
export { readHosts, type HostsSnapshot } from './hosts.js';
export { complianceOf, complianceReport, REPORT_STATES, type ComplianceReport, type ReportHost, type ReportState } from './report.js';
export { renderReport, renderRingTable, renderCurve, complianceLine } from './render.js';
export { fleetCredentials, initFleet, agentPermissions, type FleetAuthorization, type FleetCredential } from './credentials.js';
export { readAudit, type AuditRecord } from './audit.js';
export { startNatsServer, findNatsServer, type NatsServer, type NatsServerOptions } from './server.js';
export { BUCKETS, type HostState, type HostStatus, type PatchRef, type Release, type ReleaseState, type RingDesired, type RingSpec, type RingProgress } from './types.js';
