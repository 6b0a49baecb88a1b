import { afterEach, describe, expect, it, vi } from 'vitest';
import { EXIT, interruptedCode } from '../src/exit-codes.js';
import { onShutdownSignals } from '../src/signals.js';

describe('onShutdownSignals', () => {
  afterEach(() => vi.useRealTimers());

  it('first signal stops intake, a quick repeat is the same signal, a later one aborts', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const listenersBefore = process.listenerCount('SIGINT');
    const steps: string[] = [];
    const control = onShutdownSignals((signal, step) => steps.push(`${signal} ${step}`));
    try {
      // process.emit runs the handlers without delivering a real signal to the test process.
      process.emit('SIGINT', 'SIGINT');
      expect(control.stop.aborted).toBe(true);
      expect(control.stop.reason).toBe('SIGINT');
      expect(control.received()).toBe('SIGINT');
      vi.advanceTimersByTime(50);
      process.emit('SIGINT', 'SIGINT');
      expect(control.abort.aborted).toBe(false);
      vi.advanceTimersByTime(100);
      process.emit('SIGTERM', 'SIGTERM');
      expect(control.abort.aborted).toBe(true);
      expect(steps).toEqual(['SIGINT stop', 'SIGTERM abort']);
    } finally {
      control.uninstall();
    }
    expect(process.listenerCount('SIGINT')).toBe(listenersBefore);
  });

  it('maps the stopping signal to its documented exit code', () => {
    expect(interruptedCode('SIGINT')).toBe(EXIT.INTERRUPTED_SIGINT);
    expect(interruptedCode('SIGTERM')).toBe(143);
    expect(EXIT.INTERRUPTED_SIGINT).toBe(130);
  });
});
