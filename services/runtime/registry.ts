/**
 * Maps service names to their definitions. Each service module is loaded only in its own
 * process, so a service's code and dependencies never load into another service.
 */
import type { ServiceDefinition, ServiceName } from './types';

export function loadServiceDefinition(name: ServiceName): ServiceDefinition {
  switch (name) {
    case 'auth':
      return require('../auth/service').authService;
    case 'storage':
      return require('../storage/service').storageService;
    case 'sandbox':
      return require('../sandbox/service').sandboxService;
    case 'integrity':
      return require('../integrity/service').integrityService;
    case 'monitor':
      return require('../monitor/service').monitorService;
  }
}
