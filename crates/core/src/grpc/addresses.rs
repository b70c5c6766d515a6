//! `spruce.core.v1.AddressService`.

use spruce_platform::{
    identity::Caller,
    paging::{Cursor, page_limit},
    time::to_timestamp,
};
use spruce_proto::core::v1::{
    Address as WireAddress, AddressInput as WireInput, CreateAddressRequest, GetAddressRequest,
    ListAddressesRequest, ListAddressesResponse, address_service_server::AddressService,
};
use tonic::{Request, Response, Status};

use super::path_id;
use crate::{
    domain::address::{Address, AddressInput, RawAddress},
    error::CoreError,
    usecases::addresses::Addresses,
};

/// The gRPC face of [`Addresses`].
pub struct AddressApi {
    addresses: Addresses,
}

impl AddressApi {
    /// Wraps the address use cases.
    pub fn new(addresses: Addresses) -> Self {
        AddressApi { addresses }
    }
}

fn to_wire(address: Address) -> WireAddress {
    let details = address.details;
    WireAddress {
        id: address.id.to_string(),
        details: Some(WireInput {
            label: details.label,
            line1: details.line1,
            city: details.city,
            postal_code: details.postal_code,
            lat: details.location.lat,
            lng: details.location.lng,
            size_m2: details.size_m2,
            bedrooms: details.bedrooms,
            bathrooms: details.bathrooms,
            has_pets: details.has_pets,
        }),
        created_at: Some(to_timestamp(address.created_at)),
    }
}

#[tonic::async_trait]
impl AddressService for AddressApi {
    async fn create_address(
        &self,
        request: Request<CreateAddressRequest>,
    ) -> Result<Response<WireAddress>, Status> {
        let caller = Caller::of(&request);
        let wire = request.get_ref().address.clone().unwrap_or_default();
        let raw = RawAddress {
            label: &wire.label,
            line1: &wire.line1,
            city: &wire.city,
            postal_code: &wire.postal_code,
            lat: wire.lat,
            lng: wire.lng,
            size_m2: wire.size_m2,
            bedrooms: wire.bedrooms,
            bathrooms: wire.bathrooms,
            has_pets: wire.has_pets,
        };
        let input = AddressInput::parse(&raw).map_err(CoreError::Validation)?;
        Ok(Response::new(to_wire(
            self.addresses.create(caller, input).await?,
        )))
    }

    async fn list_addresses(
        &self,
        request: Request<ListAddressesRequest>,
    ) -> Result<Response<ListAddressesResponse>, Status> {
        let caller = Caller::of(&request);
        let wire = request.get_ref();
        let limit =
            page_limit(wire.limit).map_err(|message| CoreError::invalid("limit", message))?;
        let after = Cursor::from_wire(&wire.cursor)
            .map_err(|message| CoreError::invalid("cursor", message))?;
        let (page, next) = self.addresses.list(caller, after, limit).await?;
        Ok(Response::new(ListAddressesResponse {
            addresses: page.into_iter().map(to_wire).collect(),
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        }))
    }

    async fn get_address(
        &self,
        request: Request<GetAddressRequest>,
    ) -> Result<Response<WireAddress>, Status> {
        let caller = Caller::of(&request);
        let id = path_id(&request.get_ref().address_id)?;
        let address = self.addresses.get(caller, id).await?;
        Ok(Response::new(to_wire(address)))
    }
}
