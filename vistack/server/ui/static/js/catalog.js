// What the server offers: models, shields, providers and their health, read from /v1/models, /v1/shields,
// /v1/providers and /v1/health, with each model's and shield's availability worked out from its
// provider's health (a provider in error names the model whose weights it could not load).

export async function loadCatalog(api) {
  const [models, shields, providers, health] = await Promise.all([
    api.get("/v1/models").then((r) => r.data || []),
    api.get("/v1/shields").then((r) => r.data || []), // without a safety API the list is empty, not an error
    api.get("/v1/providers").then((r) => r.data || []),
    api.get("/v1/health").catch((e) => ({ status: "Error", error: e.message })),
  ]);
  const byProvider = new Map(providers.map((p) => [p.provider_id, p]));
  const degraded = (health && health.degraded) || {};

  const modelState = (model) => {
    const meta = model.custom_metadata || {};
    const provider = byProvider.get(meta.provider_id);
    const status = provider?.health?.status;
    const message = provider?.health?.message || degraded[meta.provider_id] || "";
    const resource = meta.provider_resource_id || model.id;
    if (status === "Error" || degraded[meta.provider_id]) {
      // one provider can serve several models: only the model its message names is unavailable
      const names = [resource, model.id, model.id.split("/").slice(1).join("/")].filter(Boolean);
      if (!message || names.some((n) => message.includes(`'${n}'`) || message.includes(`"${n}"`))) {
        return { ok: false, text: "Unavailable", detail: message || "Its provider reports an error." };
      }
      return { ok: true, text: "Available", detail: "" };
    }
    if (!provider) return { ok: true, text: "Available", detail: "" };
    return { ok: true, text: "Available", detail: status && status !== "OK" ? `Provider health: ${status}` : "" };
  };

  const shieldModels = new Set(shields.map((s) => s.provider_resource_id).filter(Boolean));
  const modelRows = models.map((m) => ({
    id: m.id,
    type: m.custom_metadata?.model_type || "llm",
    provider_id: m.custom_metadata?.provider_id || "",
    vision: Boolean(m.custom_metadata?.vision),
    guard: shieldModels.has(m.id) || shieldModels.has(m.custom_metadata?.provider_resource_id),
    state: modelState(m),
  }));
  const shieldRows = shields.map((s) => {
    const provider = byProvider.get(s.provider_id);
    const model = modelRows.find((m) => m.id === s.provider_resource_id
      || m.id.endsWith(`/${s.provider_resource_id}`));
    let state = { ok: true, text: "Available", detail: "" };
    if (provider?.health?.status === "Error") state = { ok: false, text: "Unavailable", detail: provider.health.message || "" };
    else if (model && !model.state.ok) state = { ok: false, text: "Unavailable", detail: model.state.detail };
    return { id: s.identifier, provider_id: s.provider_id, model: s.provider_resource_id || "", state };
  });
  return { models: modelRows, shields: shieldRows, providers, health };
}

/** The models one can ask (language models that are not a shield's guard model), usable ones first. */
export function chatModels(catalog) {
  const llms = catalog.models.filter((m) => m.type === "llm" && !m.guard);
  return [...llms.filter((m) => m.state.ok), ...llms.filter((m) => !m.state.ok)];
}
