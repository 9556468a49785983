import { localTimestamp } from '../../log/time.ts';
import { defineCommand } from '../registry.ts';

export default defineCommand({
  name: 'TIME',
  usage: 'TIME',
  summary: "The server's local time as YYYY-MM-DD HH:MM:SS.",
  run: () => localTimestamp(),
});
