/**
 * Maps service names to their definitions. Each service module is loaded only in its own
 * process, so a service's code and dependencies never load into another service.
 */
import type { ServiceDefinition, ServiceName, ServiceSettings } from './types';

export function loadServiceDefinition(name: ServiceName, settings: ServiceSettings = {}): ServiceDefinition {
  switch (name) {
    case 'auth':
      return require('../auth/service').createAuthService({ sessionLifetimeMs: settings.sessionLifetimeMs });
    case 'storage':
      return require('../storage/service').createStorageService({ weakKdfForTests: settings.weakKdfForTests });
    case 'sandbox':
      return require('../sandbox/service').sandboxService;
    case 'integrity':
      return require('../integrity/service').integrityService;
    case 'monitor':
      return require('../monitor/service').monitorService;
  }
}
