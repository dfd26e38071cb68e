// gc tab: not drawn yet (see docs/live-protocol.md, "Tabs").

export function createTab(ctx) {
  return {};
}
