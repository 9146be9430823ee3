//! The RPCs a descriptor set declares (path, service, kind), so the server's call
//! layer, health and metrics derive from the protos instead of a copied list.

use prost::Message;

/// One RPC of a served service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `/package.Service/Method`, the HTTP/2 path of its calls.
    pub path: String,
    /// `package.Service`.
    pub service: String,
    /// `Method`.
    pub name: String,
    pub client_streaming: bool,
    pub server_streaming: bool,
}

impl Method {
    /// The gRPC kind, as Prometheus' `grpc_type` label names it.
    pub fn kind(&self) -> &'static str {
        match (self.client_streaming, self.server_streaming) {
            (false, false) => "unary",
            (false, true) => "server_stream",
            (true, false) => "client_stream",
            (true, true) => "bidi_stream",
        }
    }
}

/// The services whose RPCs answer from the event log alone, never from a read model
/// (`services::events` and `services::audit` use no `ReadModels`): a stopped projection
/// leaves them serving (health). Every other service reads the read models, and each
/// depends on every projection: registering a customer picks the least-loaded
/// agent from staff, customers and complaints; departures, archiving, due callbacks and
/// reports wait for every projection.
pub const EVENT_LOG_SERVICES: [&str; 2] = ["kefu.v1.EventService", "kefu.v1.AuditService"];

/// Every RPC declared by an encoded `FileDescriptorSet`.
pub fn methods(descriptor_set: &[u8]) -> Result<Vec<Method>, prost::DecodeError> {
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)?;
    let mut methods = Vec::new();
    for file in set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let service_name = match service.name.as_deref() {
                Some(name) if package.is_empty() => name.to_owned(),
                Some(name) => format!("{package}.{name}"),
                None => continue,
            };
            for method in service.method {
                let Some(name) = method.name else { continue };
                methods.push(Method {
                    path: format!("/{service_name}/{name}"),
                    service: service_name.clone(),
                    name,
                    client_streaming: method.client_streaming.unwrap_or(false),
                    server_streaming: method.server_streaming.unwrap_or(false),
                });
            }
        }
    }
    Ok(methods)
}

/// Every kefu RPC.
pub fn kefu_methods() -> Result<Vec<Method>, prost::DecodeError> {
    methods(crate::pb::FILE_DESCRIPTOR_SET)
}

/// The names of the kefu services (`kefu.v1.ComplaintService`…), in declaration order.
pub fn kefu_services() -> Result<Vec<String>, prost::DecodeError> {
    let mut services: Vec<String> = Vec::new();
    for method in kefu_methods()? {
        if !services.contains(&method.service) {
            services.push(method.service);
        }
    }
    Ok(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kefu_services_and_their_streams_come_from_the_protos() {
        let services = kefu_services().unwrap();
        assert_eq!(services.len(), 8, "{services:?}");
        for service in
            ["kefu.v1.ReportingService", "kefu.v1.RequestService", "kefu.v1.AuditService"]
        {
            assert!(services.iter().any(|s| s == service), "{service} in {services:?}");
        }
        let methods = kefu_methods().unwrap();
        let subscribe = methods
            .iter()
            .find(|m| m.path == "/kefu.v1.EventService/Subscribe")
            .expect("Subscribe");
        assert_eq!(subscribe.kind(), "server_stream");
        let filing = methods
            .iter()
            .find(|m| m.path == "/kefu.v1.ComplaintService/FileComplaint")
            .expect("FileComplaint");
        assert_eq!((filing.kind(), filing.name.as_str()), ("unary", "FileComplaint"));
        for service in EVENT_LOG_SERVICES {
            assert!(services.iter().any(|s| s == service), "{service} in {services:?}");
        }
    }
}
